/**
 * Redis INFO figures the benchmark reports: `used_memory` and the server's own CPU seconds. With
 * several URLs (the nodes of a Redis Cluster, primaries and replicas) every figure is the sum over
 * the nodes: each node is asked directly, not through a cluster client.
 */
import { Redis } from 'ioredis';

function parseSection(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export class RedisInfo {
  private constructor(private readonly nodes: readonly Redis[]) {}

  /** One Redis, or every node of a group (each figure is then summed over the nodes). */
  static async connect(url: string | readonly string[]): Promise<RedisInfo> {
    const urls = typeof url === 'string' ? [url] : url;
    if (urls.length === 0) throw new Error('RedisInfo: no Redis URL');
    const nodes = urls.map((u) => {
      const r = new Redis(u, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
      r.on('error', () => undefined);
      return r;
    });
    const info = new RedisInfo(nodes);
    try {
      await Promise.all(nodes.map((r) => r.connect()));
    } catch (e) {
      info.close();
      throw e;
    }
    return info;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  private async sum(section: string, fields: readonly string[]): Promise<number> {
    const texts = await Promise.all(this.nodes.map((r) => r.info(section)));
    let total = 0;
    for (const t of texts) {
      const s = parseSection(t);
      for (const f of fields) total += Number(s[f]);
    }
    return total;
  }

  /** `used_memory` in bytes (summed over the nodes). */
  async usedMemory(): Promise<number> {
    return this.sum('memory', ['used_memory']);
  }

  /** `used_cpu_user` + `used_cpu_sys` of the server(s), in milliseconds. */
  async cpuMs(): Promise<number> {
    return (await this.sum('cpu', ['used_cpu_user', 'used_cpu_sys'])) * 1000;
  }

  close(): void {
    for (const r of this.nodes) r.disconnect();
  }
}
