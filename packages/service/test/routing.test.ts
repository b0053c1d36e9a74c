import { API_PATHS, ERRORS, RelayError, normalizePath } from '@zax/protocol';
import { describe, expect, it } from 'vitest';
import { allowOf, errorCodeOf, originForm, routeTable, wrongMethod, type RouteSpec } from '../src/routing.js';
import { StoreUnavailableError } from '../src/store-call.js';

const api: RouteSpec[] = API_PATHS.map((path) => ({ path, label: path.slice(1), methods: ['POST'], preflight: true }));
const table = routeTable([...api, { path: '/internal/load', label: 'internal_load', methods: ['GET'] }]);
const match = (method: string, url: string): unknown => {
  const m = table.match(method, normalizePath(originForm(url)));
  return m.kind === 'notFound' ? m : { kind: m.kind, path: m.route.path };
};

describe('route tables', () => {
  it('match a normalized path exactly, then the method: POST, an OPTIONS preflight, else 405', () => {
    expect(match('POST', '/start_session.json')).toEqual({ kind: 'notFound' });
    expect(match('POST', '/COMMAND')).toEqual({ kind: 'notFound' });
    expect(match('GET', '/prove')).toEqual({ kind: 'wrongMethod', path: '/prove' });
    expect(match('OPTIONS', '/prove/')).toEqual({ kind: 'preflight', path: '/prove' });
    expect(match('POST', '//verify_session')).toEqual({ kind: 'route', path: '/verify_session' });
    expect(match('POST', 'http://relay.example/command?x=1')).toEqual({ kind: 'route', path: '/command' });
  });

  it('GET implies HEAD; a route without preflight refuses OPTIONS', () => {
    expect(match('HEAD', '/internal/load')).toEqual({ kind: 'route', path: '/internal/load' });
    expect(match('OPTIONS', '/internal/load')).toEqual({ kind: 'wrongMethod', path: '/internal/load' });
  });

  it("a 405 carries the route's Allow", () => {
    expect(allowOf(table.get('/command')!)).toBe('POST, OPTIONS');
    expect(allowOf(table.get('/internal/load')!)).toBe('GET, HEAD');
    const refusal = wrongMethod(table.get('/internal/load')!);
    expect(refusal.code).toBe('methodNotAllowed');
    expect(refusal.headers).toEqual({ allow: 'GET, HEAD' });
  });

  it('labels: the route’s, or "other" for any other path', () => {
    expect(table.labelOf('/command')).toBe('command');
    expect(table.labelOf('/etc/passwd')).toBe('other');
  });

  it('refuses a table that declares a path twice', () => {
    expect(() => routeTable([...api, api[0]!])).toThrow(/twice/);
  });
});

describe('error codes', () => {
  const policy = { unexpected: 'internal' as const };
  it('a RelayError is its own row; a store failure is busy; anything else the tier’s unexpected row', () => {
    expect(errorCodeOf(new RelayError('throttled', 'x', 3), policy)).toBe('throttled');
    expect(errorCodeOf(new StoreUnavailableError('upload', new Error('ECONNREFUSED')), policy)).toBe('busy');
    expect(errorCodeOf(new TypeError('bug'), policy)).toBe('internal');
    expect(errorCodeOf(new TypeError('bug'), { ...policy, unexpected: 'busy' })).toBe('busy');
    expect(ERRORS.httpsRequired.status).toBe(403);
    expect(ERRORS.bodyTimeout.status).toBe(408);
  });
});
