/**
 * Starts a private relay for a benchmark: a memory-only `redis-server` on a free loopback port, then
 * the core and the gatekeeper from their built `dist/` (throttling off), and stops them again, with
 * @zax/service's launchers. Only the last lines of each process's output are kept, for a useful
 * error if a service dies.
 */
import { randomBytes } from 'node:crypto';
import { freePort, loopbackRelayEnv, RedisServer, startNodeService, startRelayProcesses, TIER_MAIN, type ManagedProcess, type ReadyServiceOptions, type Tier } from '@zax/service';

/** How long a service may drain after SIGTERM before it is SIGKILLed. */
const STOP_GRACE_MS = 5000;

/** The first of `processes` that has exited, named with its last output lines; null while all run. */
export function deadProcess(processes: readonly (ManagedProcess | null)[]): string | null {
  for (const p of processes) if (p !== null && p.exited) return `${p.name} exited:\n${p.tail.join('\n')}`;
  return null;
}

/** SIGTERM, then SIGKILL after the grace period. */
export function stopService(p: ManagedProcess): Promise<unknown> {
  return p.stop('SIGTERM', STOP_GRACE_MS);
}

export interface LocalRelayOptions {
  /** Extra environment for both services (e.g. DIFFICULTY=4, CORE_WORKERS=2). */
  env?: Record<string, string>;
  /** Use this Redis instead of starting one (its CPU is then only seen through INFO). */
  redisUrl?: string;
  /** Run the services under `node --cpu-prof`, writing to `<dir>/core` and `<dir>/gatekeeper` (profile.ts). */
  profileDir?: string;
}

export class LocalRelay {
  private constructor(
    readonly url: string,
    readonly redisUrl: string,
    private readonly redis: RedisServer | null,
    private readonly running: Record<Tier, ManagedProcess>,
    /** The environment both services run with (ports, prefix, secret and `opts.env`). */
    readonly env: Readonly<Record<string, string>>,
    private readonly tiers: Readonly<Record<Tier, ReadyServiceOptions>>,
  ) {}

  /** Sends `signal` to one process of the relay (a fault: SIGKILL, SIGSTOP, SIGCONT). */
  signal(name: 'redis' | Tier, signal: NodeJS.Signals): void {
    if (name !== 'redis') this.running[name].kill(signal);
    else if (this.redis === null) throw new Error('this relay uses an outside Redis');
    else this.redis.signal(signal);
  }

  /** SIGKILLs the core or the gatekeeper (if still running) and starts it again; resolves once it is ready. */
  async restart(name: Tier): Promise<void> {
    await this.running[name].stop('SIGKILL');
    this.running[name] = await startNodeService(TIER_MAIN[name], this.tiers[name]);
  }

  /** SIGKILLs the private redis-server and starts an empty one on the same port; resolves once it answers. */
  async restartRedisEmpty(): Promise<void> {
    if (this.redis === null) throw new Error('this relay uses an outside Redis');
    await this.redis.stop();
    await this.redis.restart();
  }

  get pids(): { core: number; gatekeeper: number; redis: number | null } {
    return { core: this.running.core.pid, gatekeeper: this.running.gatekeeper.pid, redis: this.redis?.process.pid ?? null };
  }

  /** A service that died during the run, with its last log lines. */
  deadService(): string | null {
    return deadProcess([this.redis?.process ?? null, this.running.core, this.running.gatekeeper]);
  }

  static async start(opts: LocalRelayOptions = {}): Promise<LocalRelay> {
    const redis = opts.redisUrl === undefined ? await RedisServer.start() : null;
    try {
      const redisUrl = opts.redisUrl ?? redis!.url;
      const corePort = await freePort();
      const gkPort = await freePort();
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        REDIS_URL: redisUrl,
        ...loopbackRelayEnv({ corePort, port: gkPort, prefix: `bench${randomBytes(3).toString('hex')}:` }),
        ...opts.env,
      };
      const tier = (name: Tier, port: number): ReadyServiceOptions => ({
        name,
        env,
        // V8 writes the profile when the process exits normally (SIGTERM → drain → exit 0).
        nodeArgs: opts.profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}/${name}`] : [],
        readyz: `http://127.0.0.1:${port}/readyz`,
      });
      const tiers = { core: tier('core', corePort), gatekeeper: tier('gatekeeper', gkPort) };
      const { cores, gatekeepers } = await startRelayProcesses([tiers.core], [tiers.gatekeeper]);
      return new LocalRelay(`http://127.0.0.1:${gkPort}`, redisUrl, redis, { core: cores[0]!, gatekeeper: gatekeepers[0]! }, env, tiers);
    } catch (e) {
      await redis?.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    await stopService(this.running.gatekeeper);
    await stopService(this.running.core);
    await this.redis?.stop();
  }

  /** Kills everything at once (signal handlers, crashes). */
  killNow(): void {
    for (const p of [this.running.gatekeeper, this.running.core, this.redis?.process ?? null]) p?.kill('SIGKILL');
  }
}
