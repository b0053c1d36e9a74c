/**
 * What a command handler gets and gives. Handlers receive the validated, decrypted request and the
 * caller's context; they never see the HTTP request or response, and they return a result that the
 * envelope (`../command.ts`) encodes: one plain line, or an encrypted JSON line (plus an extra line).
 */
import type { CommandName, CommandRequests, Crypto } from '@zax/protocol';
import type { Config } from '../config.js';
import type { FileSeed } from '../file-seed.js';
import type { Logger } from '@zax/service';
import type { StoreGuard } from '../store-guard.js';
import type { Stores } from '../store/index.js';
import type { AnswerGate } from './download-gate.js';

export interface CommandContext {
  /** The caller's hpk (canonical b64), authenticated by its live session. */
  readonly hpk: string;
  /** The clock at the start of the request (ms); `nowSec` = floor(nowMs / 1000). */
  readonly nowMs: number;
  readonly nowSec: number;
  readonly config: Config;
  readonly stores: Stores;
  readonly crypto: Crypto;
  readonly log: Logger;
  /** The uploadID seed (configured, or generated once and kept in core Redis). */
  readonly fileSeed: FileSeed;
  /** Write commands call it first: 503 while the store is above its high-water mark. */
  readonly storeGuard: StoreGuard;
  /** The body's line 4 decoded (the envelope checks it is strict base64 by decoding it), or null. */
  readonly line4Bytes: Buffer | null;
  /** This request's share of the answer bounds (download-gate.ts): downloads enter it first. */
  readonly answers: AnswerGate;
}

export type CommandResult =
  /** One line, sent as is (not encrypted). */
  | { readonly kind: 'plain'; readonly line: string }
  /** JSON text, boxed under the session; `extraLine` follows the box as a plain third line. */
  | { readonly kind: 'encrypted'; readonly json: string; readonly extraLine?: string };

export type CommandHandler<K extends CommandName> = (ctx: CommandContext, req: CommandRequests[K]) => Promise<CommandResult>;

/** One handler per command: a missing command is a compile error. */
export type CommandHandlers = { readonly [K in CommandName]: CommandHandler<K> };

export const plain = (line: string): CommandResult => ({ kind: 'plain', line });
export const encrypted = (json: string, extraLine?: string): CommandResult =>
  extraLine === undefined ? { kind: 'encrypted', json } : { kind: 'encrypted', json, extraLine };
