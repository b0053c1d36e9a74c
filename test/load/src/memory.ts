/**
 * The `memory` mode: Redis bytes per stored message. Senders with open sessions upload N messages
 * whose `data` is `payloadBytes` long into fresh mailboxes (`perMailbox` messages each), and the
 * growth of Redis `used_memory` is divided by N. Every `/command` also leaves a replay-cache record
 * for its nonce (kept `NONCE_CACHE_SEC`), which is not message storage: a first phase of N `count`
 * commands measures that per-command cost, and the report gives both the raw and the net figure.
 * Relay and Redis CPU per upload are reported too.
 */
import { performance } from 'node:perf_hooks';
import { b64 } from '@zax/protocol';
import { CpuMeter } from './cpu.js';
import { connectSessions, type RunContext } from './engine.js';
import type { RedisInfo } from './redis-info.js';
import { THROTTLED } from './shared/throttle.js';
import { CheckFailure, countStep, newDevice, uploadStep, type Device, type Step } from './shared/wire.js';

export interface MemoryPass {
  perMailbox: number;
  messages: number;
  mailboxes: number;
  usedMemoryDelta: number;
  bytesPerMessage: number;
  /** bytesPerMessage minus the per-command replay-cache cost measured with `count`. */
  netBytesPerMessage: number;
  uploadsPerSec: number;
  relayCpuMsPerUpload: number | null;
  redisCpuMsPerUpload: number | null;
  errors: number;
}

export interface MemoryResult {
  scenario: 'memory';
  payloadBytes: number;
  concurrency: number;
  crypto: string;
  baselineUsedMemory: number;
  bytesPerCommand: number;
  redisCpuMsPerCount: number | null;
  passes: MemoryPass[];
  errors: string[];
  /** 429 answers: the relay throttled the generator. */
  throttled: number;
  ok: boolean;
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 200));

/** Runs `jobs` requests over the devices (each device one at a time); returns failures. */
async function drive(ctx: RunContext, devices: Device[], jobs: number, stepFor: (i: number) => Step, seen: { throttled: number }): Promise<string[]> {
  let next = 0;
  const errors: string[] = [];
  await Promise.all(
    devices.map(async (d) => {
      while (next < jobs) {
        const step = stepFor(next++);
        try {
          const req = step.request(d);
          step.check(d, await ctx.send(req.path, req.body));
        } catch (e) {
          if (e instanceof CheckFailure && e.status === THROTTLED) seen.throttled++;
          errors.push(e instanceof CheckFailure ? e.message : String(e));
          if (errors.length > 20) return;
        }
      }
    }),
  );
  return errors;
}

async function measure<T>(ctx: RunContext, info: RedisInfo, fn: () => Promise<T>): Promise<{ value: T; memDelta: number; relayMs: number | null; redisMs: number; sec: number }> {
  await settle();
  const mem0 = await info.usedMemory();
  const cpu0 = await info.cpuMs();
  const meter = ctx.relayPids.length > 0 ? new CpuMeter(ctx.relayPids.flatMap((g) => g.pids)) : null;
  meter?.start();
  const t0 = performance.now();
  const value = await fn();
  const sec = (performance.now() - t0) / 1000;
  const relayMs = meter ? meter.stop().ms : null;
  const redisMs = (await info.cpuMs()) - cpu0;
  await settle();
  const memDelta = (await info.usedMemory()) - mem0;
  return { value, memDelta, relayMs, redisMs, sec };
}

export async function runMemory(ctx: RunContext, concurrency: number, messages: number, perMailboxList: number[]): Promise<MemoryResult> {
  const info = ctx.redisInfo;
  if (info === null) throw new Error('memory mode needs Redis INFO: give --redis-url with --url (or let the tool start the relay)');
  const p = ctx.platform;
  const devices = Array.from({ length: concurrency }, () => newDevice(p, ctx.options));
  await connectSessions(ctx, devices);
  const errors: string[] = [];
  const seen = { throttled: 0 };

  // Per-command cost (nonce replay-cache record): N `count` commands store nothing else.
  const baselineUsedMemory = await info.usedMemory();
  const count = countStep();
  const c = await measure(ctx, info, () => drive(ctx, devices, messages, () => count, seen));
  errors.push(...c.value);
  const bytesPerCommand = c.memDelta / messages;

  const passes: MemoryPass[] = [];
  for (const perMailbox of perMailboxList) {
    const mailboxes = Math.ceil(messages / perMailbox);
    const recipients = Array.from({ length: mailboxes }, () => b64(p.random(32)));
    const steps = recipients.map((to) => uploadStep(to));
    const u = await measure(ctx, info, () => drive(ctx, devices, messages, (i) => steps[Math.floor(i / perMailbox)]!, seen));
    errors.push(...u.value);
    const bytesPerMessage = u.memDelta / messages;
    passes.push({
      perMailbox,
      messages,
      mailboxes,
      usedMemoryDelta: u.memDelta,
      bytesPerMessage,
      netBytesPerMessage: bytesPerMessage - bytesPerCommand,
      uploadsPerSec: messages / u.sec,
      relayCpuMsPerUpload: u.relayMs === null ? null : u.relayMs / messages,
      redisCpuMsPerUpload: u.redisMs / messages,
      errors: u.value.length,
    });
  }
  return {
    scenario: 'memory',
    payloadBytes: ctx.options.payloadBytes,
    concurrency,
    crypto: p.name,
    baselineUsedMemory,
    bytesPerCommand,
    redisCpuMsPerCount: c.redisMs / messages,
    passes,
    errors,
    throttled: seen.throttled,
    ok: errors.length === 0,
  };
}
