// A test file that cannot load: it throws while being imported, before any test is declared.
import { it } from 'vitest';

throw new Error('this file does not load');

it('is never collected', () => undefined);
