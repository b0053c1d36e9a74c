import { describe, expect, it } from 'vitest';
import { describeTopology, parseTopology, type Env } from '../src/index.js';

const parse = (env: Env, p: '' | 'EDGE_' = ''): { t: ReturnType<typeof parseTopology>; problems: string[] } => {
  const problems: string[] = [];
  return { t: parseTopology(env, p, problems), problems };
};

describe('parseTopology', () => {
  it('reads each topology by its variables alone', () => {
    expect(parse({ REDIS_URL: 'redis://h:1/2' }).t).toEqual({ kind: 'single', url: 'redis://h:1/2' });
    expect(parse({ REDIS_CLUSTER_NODES: 'a:7000, b:7001,[::1]:7002' }).t).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: null,
      password: null,
      tls: false,
    });
    expect(
      parse({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'core', REDIS_PASSWORD: 'pw', REDIS_SENTINEL_PASSWORD: 'spw', REDIS_TLS: 'true', REDIS_USERNAME: 'u' }).t,
    ).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'core',
      sentinelPassword: 'spw',
      username: 'u',
      password: 'pw',
      tls: true,
    });
    expect(parse({ EDGE_REDIS_CLUSTER_NODES: 'e:1', REDIS_URL: 'redis://core' }, 'EDGE_').t).toMatchObject({ kind: 'cluster', nodes: [{ host: 'e', port: 1 }] });
    expect(parse({}).t).toBeNull();
    expect(parse({}).problems).toEqual([]);
  });

  it('refuses bad combinations with a readable line each', () => {
    expect(parse({ REDIS_URL: 'redis://h', REDIS_CLUSTER_NODES: 'a:1' }).problems).toEqual(['REDIS_URL, REDIS_CLUSTER_NODES: set only one of them (one Redis topology per store)']);
    expect(parse({ REDIS_SENTINELS: 'a:1' }).problems).toEqual(['REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS (the name the sentinels monitor)']);
    expect(parse({ REDIS_CLUSTER_NODES: 'a, b:99999, :5' }).problems).toEqual([
      'REDIS_CLUSTER_NODES: "a" is not host:port',
      'REDIS_CLUSTER_NODES: "b:99999" is not host:port',
      'REDIS_CLUSTER_NODES: ":5" is not host:port',
    ]);
    expect(parse({ REDIS_CLUSTER_NODES: ' , ' }).problems).toEqual(['REDIS_CLUSTER_NODES: lists no host:port']);
    expect(parse({ REDIS_URL: 'http://h' }).problems).toEqual(['REDIS_URL: must be a redis:// or rediss:// URL']);
    expect(parse({ REDIS_URL: 'redis://h', REDIS_PASSWORD: 'x' }).problems[0]).toMatch(/^REDIS_PASSWORD: only for REDIS_CLUSTER_NODES or REDIS_SENTINELS/);
    expect(parse({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINEL_NAME: 'n' }).problems).toEqual(['REDIS_SENTINEL_NAME: only for REDIS_SENTINELS']);
    expect(parse({ REDIS_CLUSTER_NODES: 'a:1', REDIS_TLS: 'maybe' }).problems).toEqual(['REDIS_TLS: must be true or false']);
    expect(parse({ REDIS_PASSWORD: 'x' }).problems).toEqual(['REDIS_PASSWORD: set without REDIS_CLUSTER_NODES or REDIS_SENTINELS']);
  });

  it('describes a store without its password', () => {
    expect(describeTopology({ kind: 'single', url: 'redis://:secret@h:6379/1' })).toBe('redis redis://h:6379/1');
    const c = parse({ REDIS_CLUSTER_NODES: 'a:1,b:2', REDIS_PASSWORD: 'secret' }).t!;
    expect(describeTopology(c)).toBe('redis cluster via a:1,b:2');
    expect(describeTopology(parse({ REDIS_SENTINELS: 's:1', REDIS_SENTINEL_NAME: 'core', REDIS_SENTINEL_PASSWORD: 'secret' }).t!)).toBe('redis sentinel "core" via s:1');
  });
});
