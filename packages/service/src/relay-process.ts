/**
 * The relay's two tiers as real processes, from their built `dist/`: a core or a gatekeeper run
 * with a given environment, waited for until its /readyz answers 200, and a whole relay (cores
 * first, then the gatekeepers that reach them) started in order, everything started stopped again
 * if any of it fails. `pnpm start`, the test helpers and the load tool all launch the relay so.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { ManagedProcess, type ManagedProcessOptions } from './managed-process.js';

export type Tier = 'core' | 'gatekeeper';

/** Each tier's entry point in this workspace (this file is packages/service/dist/relay-process.js). */
export const TIER_MAIN: Readonly<Record<Tier, string>> = {
  core: fileURLToPath(new URL('../../core/dist/main.js', import.meta.url)),
  gatekeeper: fileURLToPath(new URL('../../gatekeeper/dist/main.js', import.meta.url)),
};

export interface LoopbackRelay {
  readonly corePort: number;
  /** The gatekeeper's port. */
  readonly port: number;
  /** REDIS_PREFIX: keys of this relay only. */
  readonly prefix: string;
  /** Keep the per-client budgets (HANDSHAKE_BURST_PER_IP, REQUEST_BURST_PER_IP). @default false */
  readonly throttling?: boolean;
}

/**
 * The environment of a relay whose core and gatekeeper listen on 127.0.0.1 at the given ports,
 * with a secret of its own and info logs. Per-client budgets are off unless asked for: a test or a
 * benchmark sends its whole load from one address. The store (REDIS_URL…) is the caller's.
 */
export function loopbackRelayEnv(relay: LoopbackRelay): Record<string, string> {
  return {
    REDIS_PREFIX: relay.prefix,
    INTERNAL_SECRET: randomBytes(24).toString('hex'),
    CORE_PORT: String(relay.corePort),
    CORE_HOST: '127.0.0.1',
    CORE_URL: `http://127.0.0.1:${relay.corePort}`,
    PORT: String(relay.port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...(relay.throttling === true ? {} : { HANDSHAKE_BURST_PER_IP: '0', REQUEST_BURST_PER_IP: '0' }),
  };
}

/** The tier that is not built yet, if any. */
export function unbuiltTier(): Tier | null {
  return (['core', 'gatekeeper'] as const).find((tier) => !existsSync(TIER_MAIN[tier])) ?? null;
}

/**
 * GET `url` → 200? Over https the certificate is checked against `ca` when given; without it, not
 * at all: a readiness probe of a process just started on this machine, whose certificate may well
 * be self-signed.
 */
export function httpOk(url: string, ca?: string | Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const tls = url.startsWith('https:');
    const get = tls ? https.get : http.get;
    const req = get(url, { timeout: 2000, agent: false, ...(tls ? (ca === undefined ? { rejectUnauthorized: false } : { ca }) : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

export interface NodeServiceOptions extends Pick<ManagedProcessOptions, 'name' | 'extraStdio' | 'detached' | 'keepLines' | 'onLine' | 'onSpawn'> {
  readonly env: NodeJS.ProcessEnv;
  /** Node options before the main file (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
}

/** Runs `main` (a tier's, see TIER_MAIN) with this Node; does not wait for it. */
export function spawnNodeService(main: string, opts: NodeServiceOptions): Promise<ManagedProcess> {
  const { nodeArgs = [], ...rest } = opts;
  return ManagedProcess.spawn({ ...rest, command: process.execPath, args: [...nodeArgs, main] });
}

export interface ReadyServiceOptions extends NodeServiceOptions {
  /** Its /readyz URL. */
  readonly readyz: string;
  /** The CA of its certificate when it serves HTTPS (unchecked without it). */
  readonly ca?: string | Buffer;
  /** @default 20 s */
  readonly readyTimeoutMs?: number;
}

/** Runs `main` and waits until its /readyz answers 200; SIGKILLs it if it is not ready. */
export async function startNodeService(main: string, opts: ReadyServiceOptions): Promise<ManagedProcess> {
  const p = await spawnNodeService(main, opts);
  try {
    await p.waitReady(opts.readyz, () => httpOk(opts.readyz, opts.ca), opts.readyTimeoutMs ?? 20_000);
  } catch (e) {
    await p.stop('SIGKILL');
    throw e;
  }
  return p;
}

export interface RelayProcesses {
  readonly cores: ManagedProcess[];
  readonly gatekeepers: ManagedProcess[];
}

/**
 * Starts the cores, waits until all are ready, then the gatekeepers, and waits for them; if any
 * fails, SIGKILLs whatever it started and throws. Throws before starting anything if a tier is not built.
 */
export async function startRelayProcesses(cores: readonly ReadyServiceOptions[], gatekeepers: readonly ReadyServiceOptions[]): Promise<RelayProcesses> {
  const missing = unbuiltTier();
  if (missing !== null) throw new Error(`${TIER_MAIN[missing]} is missing: build the relay first (pnpm build)`);
  const started: ManagedProcess[] = [];
  // Settled, not raced: a failure must not leave a sibling starting unseen, to outlive the clean-up.
  const startAll = async (tier: Tier, list: readonly ReadyServiceOptions[]): Promise<ManagedProcess[]> => {
    const onSpawn = (opts: ReadyServiceOptions) => (p: ManagedProcess): void => {
      started.push(p);
      opts.onSpawn?.(p);
    };
    const results = await Promise.allSettled(list.map((opts) => startNodeService(TIER_MAIN[tier], { ...opts, onSpawn: onSpawn(opts) })));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<ManagedProcess>).value);
  };
  try {
    const c = await startAll('core', cores);
    return { cores: c, gatekeepers: await startAll('gatekeeper', gatekeepers) };
  } catch (e) {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    throw e;
  }
}
