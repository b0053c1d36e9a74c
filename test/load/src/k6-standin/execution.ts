/** Stand-in for `k6/execution`: the VU/iteration context and test.abort(). */
import { context, TestAbort } from './state.js';

const exec = {
  vu: {
    get idInTest(): number {
      return context.vu;
    },
    get iterationInInstance(): number {
      return context.iteration;
    },
  },
  scenario: {
    get iterationInTest(): number {
      return context.iterationInTest;
    },
  },
  test: {
    abort(reason?: string): never {
      throw new TestAbort(reason ?? 'test aborted');
    },
  },
};

export default exec;
