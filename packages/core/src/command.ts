/**
 * POST /command envelope (docs/PROTOCOL.md §4.4): framing, hpk, nonce, the session box, JSON and
 * per-command validation, the file-store switch, then the command handler; and the encoding of its
 * result as one plain line or an encrypted response under the session key.
 */
import {
  B64_32_CHARS,
  B64_NONCE_CHARS,
  FILE_COMMANDS,
  HASH_BYTES,
  RelayError,
  b64,
  decodeFixed,
  decodeStrict,
  field,
  frame,
  isCommandName,
  joinLines,
  makeNonce,
  parseJsonObject,
  validateCommand,
  type Clock,
  type CommandName,
  type Crypto,
} from '@zax/protocol';
import { sendOk } from '@zax/service';
import type { AnswerGate } from './commands/download-gate.js';
import { COMMAND_HANDLERS, type CommandHandler } from './commands/index.js';
import type { Config } from './config.js';
import type { FileSeed } from './file-seed.js';
import { short, type Logger } from '@zax/service';
import type { RouteHandler } from './routes.js';
import { nonceOf } from './nonce-check.js';
import type { StoreGuard } from './store-guard.js';
import type { Stores } from './store/index.js';

export interface CommandDeps {
  readonly config: Config;
  readonly stores: Stores;
  readonly crypto: Crypto;
  readonly clock: Clock;
  readonly log: Logger;
  readonly fileSeed: FileSeed;
  readonly storeGuard: StoreGuard;
}

/** What a command was, once its box is open: counted under it, whatever its outcome. */
export interface CommandSeen {
  name: CommandName | 'unknown';
}

/** Above this size a response with a plain third line (a file chunk's base64) is built as bytes. */
const BYTES_BODY_MIN = 64 * 1024;

/**
 * `head` CRLF `extra`. A file chunk's base64 line (~683 KB) goes straight into one buffer: no
 * joined string for the response to measure and encode again. Both parts are ASCII (base64), so
 * latin1 writes them byte for byte.
 */
function withExtraLine(head: string, extra: string): string | Buffer {
  if (extra.length < BYTES_BODY_MIN) return joinLines([head, extra]);
  const out = Buffer.allocUnsafe(head.length + 2 + extra.length);
  out.write(head, 0, 'latin1');
  out.write('\r\n', head.length, 'latin1');
  out.write(extra, head.length + 2, 'latin1');
  return out;
}

/**
 * POST /command: runs the body and answers it; every outcome is counted by command name (`unknown`
 * until the box is open) and the status the client got (the error path's, for a refusal).
 */
export const commandRoute: RouteHandler = async (core, req, res, body) => {
  core.meter.command(core.clock.nowMs());
  // This request's share of the answer bounds, released when `res` closes (DEVIATION D19).
  const gate = core.answers.request(res);
  const seen: CommandSeen = { name: 'unknown' };
  let out: string | Buffer;
  try {
    out = await runCommand(core.command, body.toString('latin1'), gate, seen);
  } catch (err) {
    core.metrics.command(seen.name, core.fail(req, res, err));
    return;
  }
  gate.answer(Buffer.byteLength(out));
  core.metrics.command(seen.name, 200);
  sendOk(res, out);
};

/** Runs one `/command` body and returns the response body (lines joined by CRLF). */
export async function runCommand(deps: CommandDeps, body: string, answers: AnswerGate, seen: CommandSeen): Promise<string | Buffer> {
  const { config, stores, crypto, clock } = deps;
  const nowMs = clock.nowMs();
  const nowSec = Math.floor(nowMs / 1000);
  // 1. 3 or 4 lines: 44, 32, non-empty, optional non-empty.
  const lines = frame(body, [B64_32_CHARS, B64_NONCE_CHARS, null], 1);
  const [hpk, nonceLine, boxLine] = lines as [string, string, string];
  const line4 = lines[3] ?? null;
  // 2. hpk. DEVIATION D2: a bad hpk line is 400 (the reference relay answers 500).
  if (decodeFixed(hpk, HASH_BYTES) === null) throw new RelayError('invalid', 'hpk line: not 32 bytes');
  // 3. Nonce form and time window; 4. lines 3 and 4 strict base64 (line 4, a file chunk, is
  // decoded once, here). Both local: a request refused here has touched no store.
  const nonce = nonceOf(nonceLine, nowSec, config.nonceWindowSec, 'command nonce');
  const box = decodeStrict(boxLine);
  const line4Decoded = line4 === null ? null : decodeStrict(line4);
  // A Buffer view (no copy) of the chunk: it goes to Redis as bytes.
  const line4Bytes = line4Decoded === null ? null : Buffer.from(line4Decoded.buffer, line4Decoded.byteOffset, line4Decoded.byteLength);
  if (box === null || (line4 !== null && line4Bytes === null)) throw new RelayError('invalid', 'box line: not strict base64');
  // 3 (replay) and 5 (a live session), one atomic step in the hpk's slot: the nonce is recorded
  // in the hpk's replay cache only when the hpk has a live session, so a request without one
  // writes nothing. A replay is 400 whatever the session, as the protocol orders the steps.
  const { session, replayed } = await stores.sessions.open(hpk, nonceLine, nowMs);
  if (replayed) {
    session?.sharedKey.fill(0);
    throw new RelayError('invalid', 'command nonce: replayed');
  }
  if (session === null) throw new RelayError('unauthorized', 'no live session');
  try {
    // 6. DEVIATION D5: a box that does not open under the live session is 401 (reference: 400), so
    // glow.ts drops its stale session and reconnects. The request is not authenticated: its
    // nonce record goes too.
    const plaintext = crypto.boxOpenAfter(box, nonce, session.sharedKey);
    if (plaintext === null) {
      await stores.sessions.forgetNonce(hpk, nonceLine);
      throw new RelayError('unauthorized', 'command box does not open');
    }
    // 7–8. JSON object, known cmd, per-command validation (400 G or 413).
    const obj = parseJsonObject(plaintext);
    const cmd = field(obj, 'cmd');
    if (isCommandName(cmd)) seen.name = cmd; // counted under its name even when its fields are refused
    const req = validateCommand(obj, config, line4);
    // 9. File commands while the file store is disabled: 405, empty body.
    if (FILE_COMMANDS.has(req.cmd) && !config.fileStoreEnabled) throw new RelayError('fileStoreDisabled', `${req.cmd}: file store disabled`);
    // 10. Execution.
    const handler = COMMAND_HANDLERS[req.cmd] as CommandHandler<CommandName>;
    const result = await handler({ hpk, nowMs, nowSec, config, stores, crypto, log: deps.log, fileSeed: deps.fileSeed, storeGuard: deps.storeGuard, line4Bytes, answers }, req);
    deps.log.debug({ cmd: req.cmd, hpk: short(hpk) }, 'command');
    let out: string | Buffer;
    if (result.kind === 'plain') out = result.line;
    else {
      const rspNonce = makeNonce(nowSec, crypto.randomBytes);
      const sealed = crypto.boxAfter(Buffer.from(result.json, 'utf8'), rspNonce, session.sharedKey);
      const parts = [b64(rspNonce), b64(sealed)];
      out = result.extraLine === undefined ? joinLines(parts) : withExtraLine(joinLines(parts), result.extraLine);
    }
    return out;
  } finally {
    session.sharedKey.fill(0);
  }
}
