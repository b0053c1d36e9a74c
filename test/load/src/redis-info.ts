/** Redis INFO figures the benchmark reports: `used_memory` and the server's own CPU seconds. */
import { Redis } from 'ioredis';

export class RedisInfo {
  private readonly r: Redis;
  private constructor(url: string) {
    this.r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
    this.r.on('error', () => undefined);
  }

  static async connect(url: string): Promise<RedisInfo> {
    const info = new RedisInfo(url);
    await info.r.connect();
    return info;
  }

  private async section(name: string): Promise<Record<string, string>> {
    const text = await this.r.info(name);
    const out: Record<string, string> = {};
    for (const line of text.split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  }

  /** `used_memory` in bytes. */
  async usedMemory(): Promise<number> {
    return Number((await this.section('memory')).used_memory);
  }

  /** `used_cpu_user` + `used_cpu_sys` of the server, in milliseconds. */
  async cpuMs(): Promise<number> {
    const s = await this.section('cpu');
    return (Number(s.used_cpu_user) + Number(s.used_cpu_sys)) * 1000;
  }

  close(): void {
    this.r.disconnect();
  }
}
