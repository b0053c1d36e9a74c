/**
 * What every `zax` command works with: its `Context` (the parsed options, the streams, the text or
 * JSON `Output`), and the helpers the commands share: usage errors, contacts named on the command
 * line, the relays and --copies, the identity, --ca, opening the mailbox on one relay or several
 * (`openMailbox`, `openMulti`, `openReader`), a warning per failed relay, interruption, and text
 * from other people made safe for a terminal.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { b64, decodeFixed } from '@zax/protocol';
import { CONTACT_NAME, contactsPathFor, loadContacts, type Contact } from './contacts-file.js';
import { CliUsage, describeError, explainNetworkError, type ErrorReport } from './cli-errors.js';
import { ZaxClientError, type RelayFailure } from './errors.js';
import { parseKey, type Identity } from './identity.js';
import { defaultIdentityPath, isIdentityFileExposed, loadIdentityFile } from './identity-file.js';
import { Mailbox, type ReceivedMessage } from './mailbox.js';
import type { FetchLike } from './relay.js';
import { distinctRelayUrls, isRelayFailure, MultiMailbox } from './relays.js';

export interface CliIo {
  /** Text, and the bytes of `receive-file --out -`; `once('drain')` is awaited when `write` returns false. */
  stdout: { write(s: string | Uint8Array): unknown; once?(event: 'drain', listener: () => void): unknown };
  /** `isTTY` and `columns` choose how progress is drawn (progress.ts). */
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stdin: AsyncIterable<string | Uint8Array>;
  env: NodeJS.ProcessEnv;
  /** @default globalThis.fetch */
  fetch?: FetchLike;
  /**
   * Calls `handler` on SIGINT or SIGTERM until the returned function is called (the long-running
   * commands stop cleanly). Without it, they stop only by their own limits.
   */
  onInterrupt?(handler: () => void): () => void;
}

/** Everything any command's options can hold (parseArgs' values, by option name). */
export interface Values {
  relay?: string[];
  copies?: string;
  name?: string;
  resume?: boolean;
  'chunk-size'?: string;
  id?: string;
  out?: string;
  force?: boolean;
  to?: string;
  plain?: boolean;
  json?: boolean;
  from?: string[];
  only?: boolean;
  all?: boolean;
  ca?: string;
  help?: boolean;
  interval?: string;
  delete?: boolean;
  'max-polls'?: string;
  'exit-after'?: string;
}

// ---------- output ----------


/** Standard output and error for one run: text, or JSON with --json. */
export class Output {
  constructor(
    readonly io: CliIo,
    readonly json: boolean,
  ) {}

  /** The command's result: `text` as is, or `doc` as one JSON line. */
  result(text: string, doc: unknown): void {
    this.io.stdout.write(this.json ? `${JSON.stringify(doc)}\n` : text);
  }

  /** A warning on stderr: `zax: warning: …`, or `{"warning":{"message",…extra}}`. */
  warn(message: string, extra: Record<string, unknown> = {}): void {
    this.io.stderr.write(this.json ? `${JSON.stringify({ warning: { message, ...extra } })}\n` : `zax: warning: ${message}\n`);
  }

  /** Advice for people (not written with --json). */
  note(text: string): void {
    if (!this.json) this.io.stderr.write(text);
  }
}

// ---------- the context of a command ----------

export interface Context {
  command: string;
  v: Values;
  positionals: readonly string[];
  io: CliIo;
  out: Output;
}

export const usage = (c: Context, msg: string): CliUsage => new CliUsage(msg, c.command);

export function noPositionals(c: Context): void {
  if (c.positionals.length > 0) throw usage(c, `unexpected argument "${c.positionals[0]}"`);
}

export const identityPath = (c: Context): string => c.v.id ?? defaultIdentityPath(c.io.env);
export const contactsPath = (c: Context): string => contactsPathFor(identityPath(c));

// ---------- correspondents ----------

/** A correspondent named on the command line. */
export interface Peer {
  publicKey: Uint8Array;
  publicKeyB64: string;
  /** Its contact name, when it is a contact. */
  contact: string | null;
}

/** A contact name or a public key, from `flag` (e.g. "--to"). An unknown name is a usage error. */
export function resolvePeer(c: Context, contacts: readonly Contact[], value: string, flag: string): Peer {
  const byName = contacts.find((k) => k.name === value);
  if (byName !== undefined) return { publicKey: decodeFixed(byName.publicKey, 32)!, publicKeyB64: byName.publicKey, contact: byName.name };
  let publicKey: Uint8Array;
  try {
    publicKey = parseKey(value, flag);
  } catch (e) {
    if (CONTACT_NAME.test(value)) {
      throw usage(c, `${flag}: no contact named "${value}" (see "zax contacts list"), and not a public key (44 characters of standard base64)`);
    }
    throw usage(c, e instanceof Error ? e.message : String(e));
  }
  const publicKeyB64 = b64(publicKey);
  return { publicKey, publicKeyB64, contact: contacts.find((k) => k.publicKey === publicKeyB64)?.name ?? null };
}

export type GuestList = Iterable<{ publicKey: string | Uint8Array; name?: string }>;

// ---------- relays ----------

/** A fetch that trusts the certificates in `file` (PEM) besides the system's, for this run. */
async function caFetch(file: string): Promise<FetchLike> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw new ZaxClientError(`cannot read --ca ${file}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  try {
    new X509Certificate(pem); // the first certificate must parse; node reads every one in the file
  } catch {
    throw new ZaxClientError(`--ca ${file} is not a PEM certificate ("-----BEGIN CERTIFICATE-----" ...)`);
  }
  // undici's own fetch with its own Agent: node's global fetch is a different undici copy.
  const { Agent, fetch } = await import('undici');
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, pem] } });
  return (url, init) => fetch(url, { ...(init as Parameters<typeof fetch>[1]), dispatcher }) as unknown as Promise<Response>;
}

/** The fetch of this run: --ca's, or the io's; with `signal`, stopping cuts a request in flight short. */
async function cliFetch(c: Context, signal?: AbortSignal): Promise<FetchLike | undefined> {
  const base = c.v.ca !== undefined ? await caFetch(c.v.ca) : c.io.fetch;
  if (signal === undefined) return base;
  const inner: FetchLike = base ?? ((url, init) => globalThis.fetch(url, init));
  return (url, init) => inner(url, { ...init, signal: init.signal ? AbortSignal.any([init.signal, signal]) : signal });
}

/**
 * The relay URLs (every --relay, else the comma-separated $ZAX_RELAY), normalised and without
 * repeats, checked before the identity is read (a mistyped URL is a usage error).
 */
function relayUrls(c: Context): string[] {
  const given = c.v.relay !== undefined && c.v.relay.length > 0 ? c.v.relay : c.io.env.ZAX_RELAY ? [c.io.env.ZAX_RELAY] : [];
  const raw = given.flatMap((u) => u.split(',')).map((u) => u.trim()).filter((u) => u !== '');
  if (raw.length === 0) throw usage(c, '--relay URL is required (or set ZAX_RELAY)');
  try {
    return distinctRelayUrls(raw);
  } catch (e) {
    throw usage(c, e instanceof Error ? e.message : String(e));
  }
}

/** The relays and K of a command that can use several: `multi` when more than one URL is given. */
export interface Relays {
  urls: string[];
  copies: number;
  multi: boolean;
}

export function relays(c: Context): Relays {
  const urls = relayUrls(c);
  let copies = Math.min(2, urls.length);
  if (c.v.copies !== undefined) {
    const k = /^\d{1,3}$/.test(c.v.copies) ? Number(c.v.copies) : NaN;
    if (!(k >= 1 && k <= urls.length)) throw usage(c, `--copies: expected a whole number from 1 to the number of relays (${urls.length}), got "${c.v.copies}"`);
    copies = k;
  }
  return { urls, copies, multi: urls.length > 1 };
}

// ---------- identity and mailboxes ----------

export async function loadIdentity(c: Context): Promise<Identity> {
  const path = identityPath(c);
  const id = await loadIdentityFile(path);
  try {
    if (await isIdentityFileExposed(path)) c.out.warn(`${path} is readable by other users (chmod 600 it)`);
  } catch {
    // stat failing right after a successful read is not worth failing the command
  }
  return id;
}

export async function openMailbox(c: Context, relay: string, options: { guests?: GuestList; signal?: AbortSignal } = {}): Promise<Mailbox> {
  const identity = await loadIdentity(c);
  const fetch = await cliFetch(c, options.signal);
  return Mailbox.create({ url: relay, identity, ...(fetch ? { fetch } : {}), ...(options.guests ? { guests: options.guests } : {}) });
}

export async function openMulti(c: Context, r: Relays, options: { guests?: GuestList; signal?: AbortSignal } = {}): Promise<MultiMailbox> {
  const identity = await loadIdentity(c);
  const fetch = await cliFetch(c, options.signal);
  return new MultiMailbox({ urls: r.urls, k: r.copies, identity, ...(fetch ? { fetch } : {}), ...(options.guests ? { guests: options.guests } : {}) });
}

/** One relay's error, as the CLI reports errors (its `message`, `kind`, `status`, …). */
export const relayError = (c: Context, e: Error): ErrorReport => describeError(explainNetworkError(e, c.v.ca));

/** A warning per failed relay: `zax: warning: URL: …`, or `{"warning":{"message","url","kind",…}}`. */
export function warnFailures(c: Context, failures: readonly RelayFailure[], what: string): void {
  for (const f of failures) {
    const { message, ...rest } = relayError(c, f.error);
    c.out.warn(`${what} failed on ${f.url}: ${message}`, { url: f.url, ...rest });
  }
}

/** Per-relay outcomes for JSON: `{url, <field>: value}` or `{url, error: {message, kind, …}}`. */
export function relayOutcomes<T>(c: Context, results: readonly ({ url: string; value: T } | RelayFailure)[], field: string): Record<string, unknown>[] {
  return results.map((r) => (isRelayFailure(r) ? { url: r.url, error: relayError(c, r.error) } : { url: r.url, [field]: r.value }));
}

/** What inbox, watch, files and receive-file read: every contact and --from sender as a guest. */
export interface Reader {
  /** The single relay's mailbox; null with several relays. */
  mailbox: Mailbox | null;
  multi: MultiMailbox | null;
  /** Messages (once each, across relays); relay failures are handed to `onFailures` (default: a warning each). */
  receive: () => Promise<ReceivedMessage[]>;
  /** Deletes messages on the relay(s), warning about relays that fail. */
  remove: (nonces: readonly string[]) => Promise<void>;
}

export async function openReader(
  c: Context,
  options: { signal?: AbortSignal; positionals?: boolean; onFailures?: (failures: readonly RelayFailure[]) => void } = {},
): Promise<Reader> {
  if (options.positionals !== true) noPositionals(c);
  const contactList = await loadContacts(contactsPath(c));
  const from = (c.v.from ?? []).map((w) => resolvePeer(c, contactList, w, '--from'));
  if (c.v.only && from.length === 0) throw usage(c, '--only needs at least one --from WHO');
  const r = relays(c);
  const guests = [
    ...contactList.map((k) => ({ publicKey: k.publicKey, name: k.name })),
    ...from.filter((p) => p.contact === null).map((p) => ({ publicKey: p.publicKey })),
  ];
  const filter = c.v.only ? { from: from.map((p) => p.publicKey) } : {};
  const signal = options.signal ? { signal: options.signal } : {};
  if (r.multi) {
    const multi = await openMulti(c, r, { guests, ...signal });
    const onFailures = options.onFailures ?? ((f: readonly RelayFailure[]) => warnFailures(c, f, 'reading the mailbox'));
    return {
      mailbox: null,
      multi,
      receive: async () => {
        const got = await multi.receive(filter);
        if (got.failures.length > 0) onFailures(got.failures);
        return got.messages;
      },
      remove: async (nonces) => warnFailures(c, (await multi.delete(nonces)).failures, 'delete'),
    };
  }
  const mailbox = await openMailbox(c, r.urls[0]!, { guests, ...signal });
  return { mailbox, multi: null, receive: () => mailbox.receive(filter), remove: async (nonces) => void (await mailbox.delete(nonces)) };
}

/** Stops on SIGINT/SIGTERM: the signal to pass on, and the disposal of the handler. */
export function interruptible(c: Context): { signal: AbortSignal; dispose: () => void } {
  const stop = new AbortController();
  const dispose = c.io.onInterrupt?.(() => stop.abort()) ?? (() => undefined);
  return { signal: stop.signal, dispose };
}

// ---------- text from other people ----------

/**
 * Message text comes from other people: control characters (terminal escape sequences) are shown
 * escaped, never written raw to a terminal. Newlines and tabs stay.
 */
export function sanitizeForTerminal(s: string): string {
  // C0 and C1 controls except tab and newline, and the bidi overrides that can disguise text.
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}
