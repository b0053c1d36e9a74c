/**
 * Properties of `/command` and `/prove` under hostile bodies: random or corrupted bodies never give a
 * 5xx; staged bodies pass every check up to one stage and fail that one (a valid hpk line, then a
 * fresh nonce, a live session, a box that opens, JSON that parses, a known command whose fields have
 * the wrong types...), and must get the answer of that stage and change no state. The core's own log
 * of each refusal ("why") shows which check refused the request, and a table of the stages reached
 * is printed.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pino } from 'pino';
import { COMMAND_NAMES, TEXT_F, TEXT_G, b64, decodeFixed, decodeStrict, h2, isCommandName, randomBytes, tweetnaclCrypto as C, type KeyPair } from '@zax/protocol';
import {
  command,
  commandBody,
  commandPlain,
  establishSession,
  keySnapshot,
  mint,
  nonceAt,
  proveBody,
  startCore,
  type Core,
  type Handshake,
  type Session,
} from './helpers.js';

let core: Core;
/** The session the /command stages use. */
let s: Session;
/** A bystander with mail, whose state must not move either. */
let bob: Session;
/** The `why` of each refusal the core logs ("request refused"), in order. */
const refusals: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (line === '') continue;
        const entry = JSON.parse(line) as { msg?: string; why?: string };
        if (entry.msg === 'request refused') refusals.push(entry.why ?? '');
      }
      cb();
    },
  });
  core = await startCore({ log: pino({ level: 'debug' }, sink) });
  s = await establishSession(core);
  bob = await establishSession(core);
  for (const m of ['one', 'two']) await commandPlain(core, s, { cmd: 'upload', to: bob.hpk, payload: m });
  await commandPlain(core, bob, { cmd: 'upload', to: s.hpk, payload: 'three' });
  expect(core.config.nonceWindowSec).toBe(60); // the stale offsets below assume it
  // A nonce used once already, in both replay caches: the relay-wide one of /prove (as another
  // identity's outer nonce) and s's command cache.
  const used = nonceAt(core.clock.nowSec());
  const { handshake } = await mint(core);
  const proved = proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: used, innerNonce: nonceAt(core.clock.nowSec()) });
  expect((await core.post('/prove', proved)).status).toBe(200);
  expect((await core.post('/command', commandBody(s, { cmd: 'count' }, { nonce: used }))).status).toBe(200);
  usedNonce = b64(used);
});
afterAll(async () => {
  await core.close();
});

interface Outcome {
  readonly status: number;
  readonly details: string | null;
  readonly body: string;
  /** The refusal reasons the core logged for this request ('' when none). */
  readonly why: string;
}

async function send(path: string, body: string): Promise<Outcome> {
  refusals.length = 0;
  const r = await core.post(path, body);
  return { status: r.status, details: r.headers.get('x-error-details'), body: r.body, why: refusals.join(' | ') };
}

/**
 * Every key the relay keeps state in (keySnapshot), but for the nonce records of requests that did
 * authenticate (a fuzzed command whose box opened).
 */
const commandNonce = /^[^{]*mb:\{[^}]+\}:n:/;
const stateSnapshot = (): Promise<Record<string, string>> => keySnapshot(core, (k) => k.startsWith(`${core.prefix}nonce:`) || commandNonce.test(k));

/** Counts outcomes per stage and prints them as a table. */
class StageTable {
  private readonly rows = new Map<string, Map<string, number>>();
  add(stage: string, o: Outcome): void {
    const key = `${o.status}${o.details === TEXT_G ? ' G' : o.details === TEXT_F ? ' F' : ''} ${o.why.replace(/[A-Za-z0-9+/]{20,}={0,2}/g, '…')}`;
    const row = this.rows.get(stage) ?? new Map<string, number>();
    row.set(key, (row.get(key) ?? 0) + 1);
    this.rows.set(stage, row);
  }
  count(stage: string): number {
    let n = 0;
    for (const v of this.rows.get(stage)?.values() ?? []) n += v;
    return n;
  }
  print(title: string): void {
    const lines = [`${title}: requests per stage, by status and the core's reason`];
    for (const [stage, row] of this.rows) {
      lines.push(`  ${stage.padEnd(16)} ${String(this.count(stage)).padStart(4)}`);
      for (const [k, n] of [...row].sort((a, b) => b[1] - a[1])) lines.push(`    ${String(n).padStart(4)}  ${k}`);
    }
    console.log(lines.join('\n'));
  }
}

// ---------------------------------------------------------------------------------------------
// Building blocks

const CRLF = '\r\n';
/**
 * ASCII characters outside the base64 alphabet that keep a line on one line. (The core measures
 * lines in bytes, so a non-ASCII character would make the line too long: a framing failure.)
 */
const NON_B64 = ['-', '_', '.', '!', ' ', '\t', '*', '~', '"', '\u0000', '\u007f'];
/** Single-line ASCII strings. */
const asciiLine = (constraints: { minLength?: number; maxLength?: number }): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary-ascii', ...constraints }).filter((x) => !/[\r\n]/.test(x));

/** Replaces the character at `pos` (mod length) by `ch`. */
const withChar = (line: string, pos: number, ch: string): string => {
  const i = pos % line.length;
  return line.slice(0, i) + ch + line.slice(i + 1);
};

/** A 44-character line that is not 32 bytes of strict base64. */
const bad44 = (valid: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.uint8Array({ minLength: 31, maxLength: 31 }).map(b64),
    fc.uint8Array({ minLength: 33, maxLength: 33 }).map(b64),
    fc.tuple(fc.nat(), fc.constantFrom(...NON_B64)).map(([pos, ch]) => withChar(valid, pos, ch)),
    // non-zero pad bits: the last data character before '=' changed so its low bits are set
    fc.constantFrom(...'BCDFGHJ').map((ch) => valid.slice(0, 42) + ch + '='),
    asciiLine({ minLength: 44, maxLength: 44 }).filter((x) => decodeFixed(x, 32) === null),
  );

/** A 32-character nonce line that does not decode to 24 bytes. */
const bad32 = (valid: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.uint8Array({ minLength: 23, maxLength: 23 }).map(b64),
    fc.tuple(fc.nat(), fc.constantFrom(...NON_B64)).map(([pos, ch]) => withChar(valid, pos, ch)),
    asciiLine({ minLength: 32, maxLength: 32 }).filter((x) => decodeFixed(x, 24) === null),
  );

/** A non-empty single line that is not strict base64. */
const notBase64 = fc.oneof(
  asciiLine({ minLength: 1, maxLength: 80 }).filter((x) => decodeStrict(x) === null),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 60 }), fc.nat(), fc.constantFrom(...NON_B64)).map(([b, pos, ch]) => withChar(b64(b), pos, ch)),
  fc.constantFrom('AB==', 'AAA', 'A===', '=AAA'),
);

/** A nonce timestamp outside the ±60 s window, as an offset from the relay clock (which is T0). */
const staleOffset = fc.oneof(fc.integer({ min: 61, max: 2 ** 33 }), fc.integer({ min: -1_000_000_000, max: -61 }));

type NonceFault = { kind: 'stale'; offset: number } | { kind: 'malformed'; line: string } | { kind: 'replayed' };
const nonceFault = (valid: string): fc.Arbitrary<NonceFault> =>
  fc.oneof(
    staleOffset.map((offset) => ({ kind: 'stale' as const, offset })),
    bad32(valid).map((line) => ({ kind: 'malformed' as const, line })),
    fc.constant({ kind: 'replayed' as const }),
  );

/** A nonce that has been used once already, by a /prove and by a command of `s` (set up in beforeAll). */
let usedNonce = '';
function nonceLine(f: NonceFault): string {
  if (f.kind === 'stale') return b64(nonceAt(core.clock.nowSec() + f.offset));
  if (f.kind === 'malformed') return f.line;
  return usedNonce;
}

const freshNonce = (): Uint8Array => nonceAt(core.clock.nowSec());

// Values of the wrong type or range for a command field. `OMIT` removes the field.
const OMIT = Symbol('omit');
type Wrong = unknown;
const notString = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.array(fc.nat(), { maxLength: 3 }), fc.constant({}));
/** Not a 32-byte base64 string; `required` adds "absent" (omitted or null, which means absent). */
const badHpk = (required: boolean): fc.Arbitrary<Wrong> =>
  fc.oneof(notString, bad44(b64(randomBytes(32))), fc.string({ maxLength: 50 }).filter((x) => decodeFixed(x, 32) === null), ...(required ? [fc.constant(OMIT), fc.constant(null)] : []));
/** Not a 24-byte base64 string of 32 characters. */
const badNonce = (required: boolean): fc.Arbitrary<Wrong> =>
  fc.oneof(
    notString,
    bad32(b64(randomBytes(24))),
    fc.uint8Array({ minLength: 25, maxLength: 25 }).map(b64),
    fc.string({ maxLength: 40 }).filter((x) => x.length !== 32 || decodeFixed(x, 24) === null),
    ...(required ? [fc.constant(OMIT), fc.constant(null)] : []),
  );
/** Not a safe integer ≥ min (absent allowed only when `required`). */
const badInt = (min: number, required: boolean, max = Number.MAX_SAFE_INTEGER): fc.Arbitrary<Wrong> =>
  fc.oneof(
    fc.integer({ min: -(2 ** 31), max: min - 1 }),
    ...(max < Number.MAX_SAFE_INTEGER ? [fc.integer({ min: max + 1, max: max + 2 ** 20 })] : []),
    fc.double({ min: min + 0.001, max: 1e6, noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom(2 ** 53, 1e300),
    fc.string({ maxLength: 8 }),
    fc.boolean(),
    fc.array(fc.nat(), { maxLength: 2 }),
    ...(required ? [fc.constant(OMIT), fc.constant(null)] : []),
  );
const notStringOrAbsent = fc.oneof(notString.filter((x) => typeof x !== 'string'), fc.constant(OMIT), fc.constant(null));

/** One field path per command, a valid object with every field, and wrong values for that field. */
interface FieldCase {
  readonly cmd: string;
  readonly path: readonly (string | number)[];
  /** The refusal reason names this field. */
  readonly why: RegExp;
  readonly wrong: fc.Arbitrary<Wrong>;
}

function validCommand(cmd: string, objectPayload: boolean): Record<string, unknown> {
  const hpk = bob.hpk;
  const nonce = b64(nonceAt(core.clock.nowSec()));
  switch (cmd) {
    case 'upload':
      return { cmd, to: hpk, payload: objectPayload ? { ctext: 'c', nonce } : 'x' };
    case 'download':
      return { cmd, start: 0, count: 5, from: [hpk] };
    case 'messageStatus':
      return { cmd, token: b64(randomBytes(32)) };
    case 'delete':
      return { cmd, payload: [] };
    case 'getEntropy':
      return { cmd, size: 16 };
    case 'startFileUpload':
      return { cmd, to: hpk, file_size: 10, metadata: { nonce, ctext: 'm' } };
    case 'uploadFileChunk':
      return { cmd, uploadID: b64(randomBytes(32)), part: 0, nonce, last_chunk: true, ctext: 'AAAA' };
    case 'fileStatus':
    case 'deleteFile':
      return { cmd, uploadID: b64(randomBytes(32)) };
    case 'downloadFileChunk':
      return { cmd, uploadID: b64(randomBytes(32)), part: 0 };
    default:
      throw new Error(`no valid form for ${cmd}`);
  }
}

function fieldCases(): FieldCase[] {
  const chunk = core.config.maxChunkSize;
  const file = core.config.maxFileSize;
  const f = (cmd: string, path: (string | number)[], why: RegExp, wrong: fc.Arbitrary<Wrong>): FieldCase => ({ cmd, path, why, wrong });
  return [
    f('upload', ['to'], /^to: /, badHpk(true)),
    f('upload', ['payload'], /^payload: /, fc.oneof(notString.filter((x) => typeof x !== 'object' || Array.isArray(x)), fc.constant(OMIT), fc.constant(null))),
    f('upload', ['payload', 'ctext'], /^payload\.ctext: /, notStringOrAbsent),
    f('upload', ['payload', 'nonce'], /^payload\.nonce: /, badNonce(false)),
    f('download', ['start'], /^start: /, badInt(0, false)),
    f('download', ['count'], /^count: /, badInt(1, false)),
    f('download', ['from'], /^from/, fc.oneof(notString.filter((x) => !Array.isArray(x)), fc.constant([]), fc.constant(Array(101).fill(bob.hpk)))),
    f('download', ['from', 0], /^from\[0\]: /, badHpk(false).filter((x) => x !== null && x !== OMIT)),
    f('messageStatus', ['token'], /^token: /, badHpk(true)),
    f('delete', ['payload'], /^payload: /, fc.oneof(notString.filter((x) => !Array.isArray(x)), fc.constant(OMIT), fc.constant(null), fc.array(notString, { minLength: 1, maxLength: 3 }), fc.constant(Array(101).fill('x')))),
    f('getEntropy', ['size'], /^size /, badInt(1, true, chunk)),
    f('startFileUpload', ['to'], /^to: /, badHpk(true)),
    f('startFileUpload', ['file_size'], /^file_size /, badInt(1, true, file)),
    f('startFileUpload', ['metadata'], /^metadata: /, fc.oneof(notString.filter((x) => typeof x !== 'object' || Array.isArray(x)), fc.string({ maxLength: 5 }), fc.constant(OMIT), fc.constant(null))),
    f('startFileUpload', ['metadata', 'nonce'], /^metadata\.nonce: /, badNonce(true)),
    f('startFileUpload', ['metadata', 'ctext'], /^metadata\.ctext: /, fc.oneof(notStringOrAbsent, fc.constant(''))),
    f('uploadFileChunk', ['uploadID'], /^uploadID: /, badHpk(true)),
    f('uploadFileChunk', ['part'], /^part: /, badInt(0, true)),
    f('uploadFileChunk', ['nonce'], /^nonce: /, badNonce(true)),
    f('uploadFileChunk', ['last_chunk'], /^last_chunk: /, fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.array(fc.boolean(), { maxLength: 2 }), fc.constant({}))),
    f('uploadFileChunk', ['ctext'], /^no chunk$/, fc.oneof(notStringOrAbsent, fc.constant(''), notBase64)),
    f('fileStatus', ['uploadID'], /^uploadID: /, badHpk(true)),
    f('downloadFileChunk', ['uploadID'], /^uploadID: /, badHpk(true)),
    f('downloadFileChunk', ['part'], /^part: /, badInt(0, true)),
    f('deleteFile', ['uploadID'], /^uploadID: /, badHpk(true)),
  ];
}

/** `obj` with the value at `path` replaced (or removed for OMIT). */
function setPath(obj: Record<string, unknown>, path: readonly (string | number)[], value: Wrong): Record<string, unknown> {
  const copy = structuredClone(obj);
  let at = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === OMIT) delete at[last];
  else at[last] = value;
  return copy;
}

/** Plaintexts that are not a JSON object: bad UTF-8, bad JSON, or JSON of another type. */
const notJsonObject: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.string({ maxLength: 60 }).filter((x) => !isJsonObject(x)).map((x) => Buffer.from(x)),
  fc.nat({ max: 14 }).map((n) => Buffer.from('{"cmd":"count"}'.slice(0, n))),
  fc.tuple(fc.uint8Array({ maxLength: 20 }), fc.constantFrom(0xff, 0xfe)).map(([b, x]) => Buffer.concat([Buffer.from('{"cmd":"'), b, Buffer.from([x]), Buffer.from('"}')])),
  fc.constantFrom('', ' ', '{', '{"cmd":"count",}', "{'cmd':'count'}", '{"cmd":"count"}}', 'null', '[{"cmd":"count"}]').map((x) => Buffer.from(x)),
);

function isJsonObject(x: string): boolean {
  try {
    const v: unknown = JSON.parse(x);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// /command stages

type CommandSpec =
  | { stage: 'hpk line'; line: string }
  | { stage: 'nonce'; fault: NonceFault }
  | { stage: 'box base64'; line3: string | null; line4: string | null }
  | { stage: 'session'; hpk: Uint8Array }
  | { stage: 'box'; garbage: Uint8Array | null; bit: number }
  | { stage: 'json'; plaintext: Uint8Array }
  | { stage: 'cmd'; obj: Record<string, unknown> }
  | { stage: 'fields'; c: number; wrong: Wrong };

interface Expected {
  readonly status: number;
  readonly details: string;
  readonly why: RegExp;
}

function commandStages(cases: FieldCase[]): fc.Arbitrary<CommandSpec> {
  const badCmd = fc.oneof(
    fc.string({ maxLength: 20 }).filter((x) => !isCommandName(x)),
    fc.constantFrom(...COMMAND_NAMES).map((n) => n.toUpperCase()),
    fc.constantFrom(...COMMAND_NAMES).map((n) => ` ${n}`),
    notString,
    fc.constant(OMIT),
    fc.constant(null),
  );
  return fc.oneof(
    bad44(s.hpk).map((line) => ({ stage: 'hpk line' as const, line })),
    nonceFault(b64(nonceAt(0))).map((fault) => ({ stage: 'nonce' as const, fault })),
    fc.oneof(
      notBase64.map((line3) => ({ stage: 'box base64' as const, line3, line4: null })),
      notBase64.map((line4) => ({ stage: 'box base64' as const, line3: null, line4 })),
    ),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((hpk) => ({ stage: 'session' as const, hpk })),
    fc.tuple(fc.option(fc.uint8Array({ minLength: 1, maxLength: 300 }), { nil: null }), fc.nat()).map(([garbage, bit]) => ({ stage: 'box' as const, garbage, bit })),
    notJsonObject.map((plaintext) => ({ stage: 'json' as const, plaintext })),
    fc.tuple(badCmd, fc.dictionary(fc.constantFrom('to', 'payload', 'size', 'x'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 })).map(([cmd, rest]) => ({
      stage: 'cmd' as const,
      obj: cmd === OMIT ? rest : { ...rest, cmd },
    })),
    fc.nat({ max: cases.length - 1 }).chain((c) => cases[c]!.wrong.map((wrong) => ({ stage: 'fields' as const, c, wrong }))),
  );
}

const G400 = (why: RegExp): Expected => ({ status: 400, details: TEXT_G, why });
const G401 = (why: RegExp): Expected => ({ status: 401, details: TEXT_G, why });

/** The body of a spec, built at run time (fresh nonces), and the answer its stage must get. */
function buildCommand(spec: CommandSpec, cases: FieldCase[]): { body: string; expected: Expected } {
  const sealed = (plaintext: Uint8Array): string => {
    const nonce = freshNonce();
    return [s.hpk, b64(nonce), b64(C.boxAfter(plaintext, nonce, s.sharedKey))].join(CRLF);
  };
  switch (spec.stage) {
    case 'hpk line':
      return { body: [spec.line, b64(freshNonce()), b64(randomBytes(40))].join(CRLF), expected: G400(/^hpk line: /) };
    case 'nonce':
      return { body: [s.hpk, nonceLine(spec.fault), b64(randomBytes(40))].join(CRLF), expected: G400(/^command nonce: /) };
    case 'box base64': {
      const lines = [s.hpk, b64(freshNonce()), spec.line3 ?? b64(randomBytes(40))];
      if (spec.line4 !== null) lines.push(spec.line4);
      return { body: lines.join(CRLF), expected: G400(/^box line: /) };
    }
    case 'session':
      return { body: commandBody({ hpk: b64(spec.hpk), sharedKey: s.sharedKey }, { cmd: 'count' }, { nonce: freshNonce() }), expected: G401(/^no live session$/) };
    case 'box': {
      if (spec.garbage !== null) return { body: [s.hpk, b64(freshNonce()), b64(spec.garbage)].join(CRLF), expected: G401(/^command box does not open$/) };
      // A real box with one bit flipped.
      const lines = commandBody(s, { cmd: 'count' }, { nonce: freshNonce() }).split(CRLF);
      const box = Buffer.from(lines[2]!, 'base64');
      box[Math.floor(spec.bit / 8) % box.length]! ^= 1 << spec.bit % 8;
      return { body: [lines[0], lines[1], b64(box)].join(CRLF), expected: G401(/^command box does not open$/) };
    }
    case 'json':
      return { body: sealed(spec.plaintext), expected: G400(/^plaintext is not /) };
    case 'cmd':
      return { body: sealed(Buffer.from(JSON.stringify(spec.obj))), expected: G400(/^unknown cmd$/) };
    case 'fields': {
      const c = cases[spec.c]!;
      const obj = setPath(validCommand(c.cmd, c.path[0] === 'payload' && c.path.length > 1), c.path, spec.wrong);
      return { body: sealed(Buffer.from(JSON.stringify(obj))), expected: G400(c.why) };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// /prove stages

type ProveSpec =
  | { stage: 'handshake id'; line: string }
  | { stage: 'handshake'; id: Uint8Array }
  | { stage: 'a_sess_pk'; line: string }
  | { stage: 'outer nonce'; fault: NonceFault }
  | { stage: 'outer box'; garbage: Uint8Array | null; bit: number }
  | { stage: 'inner json'; plaintext: Uint8Array }
  | { stage: 'inner fields'; field: 'pub_key' | 'nonce' | 'ctext'; wrong: Wrong }
  | { stage: 'inner nonce'; fault: NonceFault | { kind: 'outer' } }
  | { stage: 'inner box'; garbage: Uint8Array }
  | { stage: 'signature'; sign: Uint8Array };

const INNER_JSON_BYTES = 176;

function proveStages(hs: Handshake): fc.Arbitrary<ProveSpec> {
  // Wrong inner values take no more JSON than the real one (n characters), so the inner JSON still
  // fits its 176 bytes; each is checked to be wrong for its field.
  const wrongInner = (n: number, isValid: (x: string) => boolean, more: fc.Arbitrary<string>): fc.Arbitrary<Wrong> =>
    fc
      .oneof(notString, fc.string({ maxLength: n }), more, fc.constant(OMIT), fc.constant(null))
      .filter((x) => x === OMIT || (JSON.stringify(x).length <= n + 2 && (typeof x !== 'string' || !isValid(x))));
  const bad = {
    pub_key: wrongInner(44, (x) => decodeFixed(x, 32) !== null, bad44(b64(randomBytes(32)))),
    nonce: wrongInner(32, (x) => decodeFixed(x, 24) !== null, bad32(b64(randomBytes(24)))),
    ctext: wrongInner(64, (x) => decodeStrict(x) !== null, notBase64),
  };
  return fc.oneof(
    bad44(hs.handshakeId).map((line) => ({ stage: 'handshake id' as const, line })),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((id) => ({ stage: 'handshake' as const, id })),
    bad44(b64(randomBytes(32))).map((line) => ({ stage: 'a_sess_pk' as const, line })),
    nonceFault(b64(nonceAt(0))).map((fault) => ({ stage: 'outer nonce' as const, fault })),
    fc.tuple(fc.option(fc.uint8Array({ minLength: 192, maxLength: 192 }), { nil: null }), fc.nat()).map(([garbage, bit]) => ({ stage: 'outer box' as const, garbage, bit })),
    fc
      .oneof(
        fc.uint8Array({ minLength: INNER_JSON_BYTES, maxLength: INNER_JSON_BYTES }),
        notJsonObject.map((p) => Buffer.concat([p, Buffer.alloc(INNER_JSON_BYTES, ' ')]).subarray(0, INNER_JSON_BYTES)),
      )
      .filter((p) => !isJsonObject(Buffer.from(p).toString('utf8')))
      .map((plaintext) => ({ stage: 'inner json' as const, plaintext })),
    fc.oneof(
      bad.pub_key.map((wrong) => ({ stage: 'inner fields' as const, field: 'pub_key' as const, wrong })),
      bad.nonce.map((wrong) => ({ stage: 'inner fields' as const, field: 'nonce' as const, wrong })),
      bad.ctext.map((wrong) => ({ stage: 'inner fields' as const, field: 'ctext' as const, wrong })),
    ),
    fc
      .oneof(
        staleOffset.map((offset) => ({ kind: 'stale' as const, offset })),
        fc.constant({ kind: 'replayed' as const }),
        fc.constant({ kind: 'outer' as const }),
      )
      .map((fault) => ({ stage: 'inner nonce' as const, fault })),
    fc.uint8Array({ minLength: 48, maxLength: 48 }).map((garbage) => ({ stage: 'inner box' as const, garbage })),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((sign) => ({ stage: 'signature' as const, sign })),
  );
}

/** A /prove body for `hs` whose parts come from `spec`; every other part is valid. */
function buildProve(hs: Handshake, spec: ProveSpec): { body: string; expected: Expected } {
  const identity: KeyPair = C.keyPair();
  const aSess: KeyPair = C.keyPair();
  const outerNonce = spec.stage === 'outer nonce' ? null : freshNonce();
  const outerNonceLine = outerNonce === null ? nonceLine((spec as { fault: NonceFault }).fault) : b64(outerNonce);
  let innerNonceLine = b64(freshNonce());
  if (spec.stage === 'inner nonce') innerNonceLine = spec.fault.kind === 'outer' ? outerNonceLine : nonceLine(spec.fault);
  const innerNonce = Buffer.from(innerNonceLine, 'base64');
  const sign = spec.stage === 'signature' ? spec.sign : h2(aSess.publicKey, hs.relayToken, hs.clientToken);
  const ctext = spec.stage === 'inner box' ? spec.garbage : C.box(sign, innerNonce.length === 24 ? innerNonce : freshNonce(), hs.relaySessionPk, identity.secretKey);
  let inner: Record<string, unknown> = { pub_key: b64(identity.publicKey), nonce: innerNonceLine, ctext: b64(ctext) };
  if (spec.stage === 'inner fields') inner = setPath(inner, [spec.field], spec.wrong);
  let plaintext: Uint8Array;
  if (spec.stage === 'inner json') plaintext = spec.plaintext;
  else {
    const json = JSON.stringify(inner);
    if (Buffer.byteLength(json) > INNER_JSON_BYTES) throw new Error(`inner JSON of ${Buffer.byteLength(json)} bytes: the generator must keep it at most ${INNER_JSON_BYTES}`);
    plaintext = Buffer.from(json.padEnd(INNER_JSON_BYTES - (Buffer.byteLength(json) - json.length), ' '));
  }
  expect(plaintext.length).toBe(INNER_JSON_BYTES);
  const outerKeyNonce = outerNonce ?? freshNonce();
  let outer = Buffer.from(C.box(plaintext, outerKeyNonce, hs.relaySessionPk, aSess.secretKey));
  if (spec.stage === 'outer box') {
    if (spec.garbage !== null) outer = Buffer.from(spec.garbage);
    else outer[Math.floor(spec.bit / 8) % outer.length]! ^= 1 << spec.bit % 8;
  }
  const lines = [hs.handshakeId, b64(aSess.publicKey), outerNonceLine, b64(outer)];
  let expected: Expected;
  switch (spec.stage) {
    case 'handshake id':
      lines[0] = spec.line;
      expected = G400(/^handshake id: /);
      break;
    case 'handshake':
      lines[0] = b64(spec.id);
      expected = G401(/^no live handshake$/);
      break;
    case 'a_sess_pk':
      lines[1] = spec.line;
      expected = G400(/^a_sess_pk: /);
      break;
    case 'outer nonce':
      expected = G400(/^outer nonce: /);
      break;
    case 'outer box':
      expected = G400(/^outer box does not open$/);
      break;
    case 'inner json':
      expected = G400(/^plaintext is not /);
      break;
    case 'inner fields':
      // (the inner nonce's own check, freshness and replay, is the next stage)
      expected = G400(spec.field === 'nonce' ? /^inner nonce: not 24 bytes$/ : new RegExp(`^inner ${spec.field}: `));
      break;
    case 'inner nonce':
      expected = G400(/^inner nonce: (outside the time window|replayed)$/);
      break;
    case 'inner box':
      expected = G400(/^inner box does not open$/);
      break;
    case 'signature':
      expected = G401(/^session signature mismatch$/);
      break;
  }
  return { body: lines.join(CRLF), expected };
}

function expectOutcome(o: Outcome, e: Expected, label: string): void {
  expect(o.status, label).toBeLessThan(500);
  expect([o.status, o.details, o.body], `${label} (core: ${o.why})`).toEqual([e.status, e.details, '']);
  expect(o.why, label).toMatch(e.why);
}

// ---------------------------------------------------------------------------------------------

const line = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 200 }).map((b) => b64(b)),
  fc.constantFrom(44, 32, 256).chain((n) => fc.string({ minLength: n, maxLength: n })),
);
const body = fc.oneof(
  fc.array(line, { maxLength: 6 }).chain((ls) => fc.constantFrom('\r\n', '\n').map((sep) => ls.join(sep))),
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString('latin1')),
);

describe('fuzz', () => {
  it('random bodies on /command and /prove → 4xx only', async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('/command', '/prove'), async (b, path) => {
        const r = await core.post(path, b);
        expect([400, 401, 413]).toContain(r.status);
        expect(r.body).toBe('');
      }),
      { numRuns: 150 },
    );
  });

  it('a valid body with one character changed → 4xx, never 500', async () => {
    const { handshake } = await mint(core);
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.nat(), fc.integer({ min: 0, max: 127 }), async (isProve, pos, ch) => {
        const now = core.clock.nowSec();
        const valid = isProve
          ? proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: nonceAt(now), innerNonce: nonceAt(now), sign: new Uint8Array(32) })
          : commandBody(s, { cmd: 'count' }, { nowSec: now });
        const i = pos % valid.length;
        const corrupted = valid.slice(0, i) + String.fromCharCode(ch) + valid.slice(i + 1);
        const r = await core.post(isProve ? '/prove' : '/command', corrupted);
        expect(r.status).toBeLessThan(500);
        if (corrupted !== valid) expect(r.status).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 150 },
    );
  });

  it('/command bodies that fail at one stage get that stage\'s answer and change nothing', async () => {
    const cases = fieldCases();
    const before = await stateSnapshot();
    const table = new StageTable();
    const fieldsSeen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(commandStages(cases), async (spec) => {
        const { body: b, expected } = buildCommand(spec, cases);
        const o = await send('/command', b);
        const label = spec.stage === 'fields' ? `fields ${cases[spec.c]!.cmd}.${cases[spec.c]!.path.join('.')}` : spec.stage;
        table.add(spec.stage, o);
        if (spec.stage === 'fields') fieldsSeen.add(spec.c);
        expectOutcome(o, expected, label);
      }),
      { numRuns: 600 },
    );
    table.print('/command');
    expect(await stateSnapshot()).toEqual(before);
    for (const stage of ['hpk line', 'nonce', 'box base64', 'session', 'box', 'json', 'cmd', 'fields']) expect(table.count(stage), stage).toBeGreaterThan(10);
    console.log(`/command: ${fieldsSeen.size} of ${cases.length} command fields given a wrong value`);
    expect(fieldsSeen.size).toBeGreaterThan(cases.length / 2);
    // The session still works.
    expect((await command(core, s, { cmd: 'count' })).status).toBe(200);
  }, 120_000);

  it('every command field refuses wrong values (12 per field, a fixed seed each)', async () => {
    const cases = fieldCases();
    const before = await stateSnapshot();
    for (const [c, fieldCase] of cases.entries()) {
      for (const wrong of fc.sample(fieldCase.wrong, { numRuns: 12, seed: c + 1 })) {
        const { body: b, expected } = buildCommand({ stage: 'fields', c, wrong }, cases);
        expectOutcome(await send('/command', b), expected, `${fieldCase.cmd}.${fieldCase.path.join('.')} = ${String(JSON.stringify(wrong))}`);
      }
    }
    expect(await stateSnapshot()).toEqual(before);
  }, 120_000);

  it('/prove bodies that fail at one stage get that stage\'s answer, leave the handshake and change nothing', async () => {
    const { handshake } = await mint(core, { expiresAtMs: core.clock.nowMs() + 3_600_000 });
    const before = await stateSnapshot();
    const table = new StageTable();
    await fc.assert(
      fc.asyncProperty(proveStages(handshake), async (spec) => {
        const { body: b, expected } = buildProve(handshake, spec);
        const o = await send('/prove', b);
        table.add(spec.stage, o);
        expectOutcome(o, expected, spec.stage);
      }),
      { numRuns: 400 },
    );
    table.print('/prove');
    expect(await stateSnapshot()).toEqual(before);
    for (const stage of ['handshake id', 'handshake', 'a_sess_pk', 'outer nonce', 'outer box', 'inner json', 'inner fields', 'inner nonce', 'inner box', 'signature']) {
      expect(table.count(stage), stage).toBeGreaterThan(10);
    }
    // The handshake was never consumed: the real proof succeeds.
    const now = core.clock.nowSec();
    const ok = await core.post('/prove', proveBody({ handshake, identity: C.keyPair(), aSess: C.keyPair(), outerNonce: nonceAt(now), innerNonce: nonceAt(now) }));
    expect(ok.status).toBe(200);
  }, 120_000);

  it('random command fields under a live session → never 5xx', async () => {
    const value = fc.oneof(fc.anything({ maxDepth: 2 }), fc.constant(s.hpk), fc.constant(b64(nonceAt(0))), fc.integer(), fc.array(fc.constant(s.hpk)));
    const cmd = fc.record(
      {
        cmd: fc.constantFrom(...COMMAND_NAMES),
        to: value,
        payload: fc.oneof(value, fc.record({ ctext: value, nonce: value }, { requiredKeys: [] })),
        start: value,
        count: value,
        from: value,
        token: value,
        size: fc.oneof(value, fc.integer({ min: 1, max: 100 })),
        uploadID: value,
        part: value,
      },
      { requiredKeys: ['cmd'] },
    );
    await fc.assert(
      fc.asyncProperty(cmd, async (c) => {
        const r = await command(core, s, c);
        expect([200, 400, 405, 413, 429]).toContain(r.status);
      }),
      { numRuns: 200 },
    );
  });
});
