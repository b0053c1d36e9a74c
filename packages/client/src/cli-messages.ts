/**
 * The message commands of the `zax` CLI: keygen, id, send, inbox, delete, status, contacts and
 * watch, and how messages are shown (text, or JSON with --json). Their help texts and options are
 * rows of `COMMANDS` in cli-app.ts.
 */
import { b64, decodeFixed, NONCE_BYTES } from '@zax/protocol';
import { contactHpk, contactNameProblem, ContactsError, loadContacts, updateContacts, type Contact } from './contacts-file.js';
import {
  contactsPath,
  identityPath,
  loadIdentity,
  noPositionals,
  openMailbox,
  openMulti,
  openReader,
  relayError,
  relayOutcomes,
  relays,
  resolvePeer,
  sanitizeForTerminal,
  usage,
  warnFailures,
  type Context,
} from './cli-context.js';
import { describeError, EXIT_ERROR, EXIT_OK, explainNetworkError } from './cli-errors.js';
import { AllRelaysFailedError, RelayHttpError, RelayNetworkError, RelayProtocolError, UsageError, type RelayFailure } from './errors.js';
import { generateIdentity, parseKey, type Identity } from './identity.js';
import { defaultIdentityPath, saveIdentityFile } from './identity-file.js';
import type { ReceivedMessage } from './mailbox.js';
import { isRelayFailure, type MultiReceivedMessage } from './relays.js';
import { Backoff, watch } from './watch.js';

// ---------- identity ----------

export async function keygen(c: Context): Promise<number> {
  noPositionals(c);
  const path = c.v.out ?? defaultIdentityPath(c.io.env);
  const id = generateIdentity();
  await saveIdentityFile(path, id, { overwrite: c.v.force === true });
  c.out.result(describeIdentity(id), { ...identityJson(id), path });
  c.out.note(
    `identity written to ${path}\n` +
      'Share your public key (above) with the people who will write to you; the hpk is your mailbox address.\n' +
      'Keep the identity file secret (and backed up): it holds your secret key; whoever has it can read your mail and write as you.\n',
  );
  return EXIT_OK;
}

export async function showId(c: Context): Promise<number> {
  noPositionals(c);
  const id = await loadIdentity(c);
  c.out.result(describeIdentity(id), { ...identityJson(id), path: identityPath(c) });
  return EXIT_OK;
}

function describeIdentity(id: Identity): string {
  return `public key: ${b64(id.publicKey)}\nhpk:        ${b64(id.hpk)}\n`;
}

const identityJson = (id: Identity): Record<string, string> => ({ publicKey: b64(id.publicKey), hpk: b64(id.hpk) });

// ---------- messages ----------

export async function send(c: Context): Promise<number> {
  const { v, positionals } = c;
  if (v.to === undefined) throw usage(c, '--to WHO is required (a contact name or a public key)');
  const to = resolvePeer(c, await loadContacts(contactsPath(c)), v.to, '--to');
  if (positionals.length !== 1) throw usage(c, positionals.length === 0 ? 'MESSAGE is required ("-" reads standard input)' : 'give the message as one argument (quote it)');
  const r = relays(c);
  const text = positionals[0] === '-' ? dropTrailingNewline(await readAll(c.io.stdin)) : positionals[0]!;
  // glow.ts shows an empty decrypted text as its ciphertext, so an empty message is refused.
  if (text === '') throw usage(c, 'the message is empty');
  if (r.multi) {
    const multi = await openMulti(c, r);
    const sent = await multi.send(to.publicKey, text, { encrypt: v.plain !== true });
    warnFailures(c, sent.failures, 'send');
    const token = sent.relays.find((o): o is { url: string; token: string } => !isRelayFailure(o))!.token;
    const outcomes = sent.relays.map((o) => (isRelayFailure(o) ? { url: o.url, error: relayError(c, o.error) } : { url: o.url, token: o.token }));
    c.out.result(`${token}\n`, { token, nonce: sent.nonce, to: sent.to, publicKey: to.publicKeyB64, contact: to.contact, relays: outcomes });
    return EXIT_OK;
  }
  const mailbox = await openMailbox(c, r.urls[0]!);
  const sent = await mailbox.send(to.publicKey, text, { encrypt: v.plain !== true });
  c.out.result(`${sent.token}\n`, { ...sent, publicKey: to.publicKeyB64, contact: to.contact });
  return EXIT_OK;
}

async function readAll(stream: AsyncIterable<string | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new UsageError('standard input is not UTF-8 text');
  }
}

const dropTrailingNewline = (s: string): string => (s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s);

export async function inbox(c: Context): Promise<number> {
  const { receive } = await openReader(c);
  const messages = await receive();
  c.out.result(formatInbox(messages), messages.map(toJson));
  return EXIT_OK;
}

export async function deleteCommand(c: Context): Promise<number> {
  const { v, positionals } = c;
  if (v.all && positionals.length > 0) throw usage(c, 'give NONCE... or --all, not both');
  if (!v.all && positionals.length === 0) throw usage(c, 'give the NONCE of each message to delete, or --all');
  for (const n of positionals) {
    if (decodeFixed(n, NONCE_BYTES) === null) throw usage(c, `not a message nonce (32 characters of base64): "${n}"`);
  }
  const r = relays(c);
  const deleted = v.all ? 'all' : positionals;
  const plural = (n: number): string => `${n} message${n === 1 ? '' : 's'} left`;
  if (r.multi) {
    const multi = await openMulti(c, r);
    const res = v.all ? await multi.deleteAll() : await multi.delete(positionals);
    warnFailures(c, res.failures, 'delete');
    const counts = res.relays.flatMap((o) => (isRelayFailure(o) ? [] : [o.remaining]));
    const left = Math.max(...counts);
    const text = res.relays.map((o) => (isRelayFailure(o) ? `${o.url}: failed\n` : `${o.url}: ${plural(o.remaining)}\n`)).join('');
    const outcomes = res.relays.map((o) => (isRelayFailure(o) ? { url: o.url, error: relayError(c, o.error) } : { url: o.url, left: o.remaining }));
    c.out.result(text, { deleted, left, relays: outcomes });
    return EXIT_OK;
  }
  const mailbox = await openMailbox(c, r.urls[0]!);
  const left = v.all ? await mailbox.deleteAll() : await mailbox.delete(positionals);
  c.out.result(`${plural(left)}\n`, { deleted, left });
  return EXIT_OK;
}

const describeTtl = (ttl: number): string => (ttl >= 0 ? `live, expires in ${formatDuration(ttl)}` : 'gone (deleted by the recipient, expired, or unknown)');

export async function status(c: Context): Promise<number> {
  if (c.positionals.length !== 1) throw usage(c, 'give exactly one TOKEN');
  const token = c.positionals[0]!;
  if (decodeFixed(token, 32) === null) throw usage(c, `not a storage token (44 characters of base64): "${token}"`);
  const r = relays(c);
  if (r.multi) {
    // The token does not say which K relays carry the message: ask every relay of the list.
    const multi = await openMulti(c, r);
    const results = await multi.onRelays(r.urls, (mb) => mb.messageStatus(token));
    const failures = results.filter(isRelayFailure);
    if (failures.length === results.length) throw new AllRelaysFailedError('status', failures);
    warnFailures(c, failures, 'status');
    const ttl = Math.max(...results.flatMap((o) => (isRelayFailure(o) ? [] : [o.value])));
    const text = `${describeTtl(ttl)}\n${results.map((o) => `  ${o.url}: ${isRelayFailure(o) ? 'failed' : o.value >= 0 ? `live, ${o.value} s` : 'gone'}\n`).join('')}`;
    c.out.result(text, { token, ttlSec: ttl, relays: relayOutcomes(c, results, 'ttlSec') });
    return EXIT_OK;
  }
  const mailbox = await openMailbox(c, r.urls[0]!);
  const ttl = await mailbox.messageStatus(token);
  c.out.result(`${describeTtl(ttl)}\n`, { token, ttlSec: ttl });
  return EXIT_OK;
}

function formatDuration(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  const parts = [d ? `${d}d` : '', d || h ? `${h}h` : '', d || h || m ? `${m}m` : '', `${s}s`].filter(Boolean);
  return `${parts.join(' ')} (${sec} s)`;
}

// ---------- contacts ----------

const contactJson = (k: Contact): Record<string, string> => ({ name: k.name, publicKey: k.publicKey, hpk: contactHpk(k) });

export async function contacts(c: Context): Promise<number> {
  const [sub, ...args] = c.positionals;
  const path = contactsPath(c);
  const arity = (n: number, what: string): void => {
    if (args.length !== n) throw usage(c, `zax contacts ${sub} takes ${what}`);
  };
  const checkName = (name: string): void => {
    const problem = contactNameProblem(name);
    if (problem !== null) throw usage(c, problem);
  };
  if (c.v.force && sub !== 'add') throw usage(c, '--force goes with "zax contacts add" only');
  switch (sub) {
    case 'add': {
      arity(2, 'NAME PUBKEY');
      const [name, key] = args as [string, string];
      checkName(name);
      let publicKey: string;
      try {
        publicKey = b64(parseKey(key, 'PUBKEY'));
      } catch (e) {
        throw usage(c, e instanceof Error ? e.message : String(e));
      }
      const added: Contact = { name, publicKey };
      const { old, twin } = await updateContacts(path, (list) => {
        const old = list.find((k) => k.name === name);
        if (old !== undefined && c.v.force !== true) {
          throw new ContactsError(`a contact named "${name}" already exists (${old.publicKey}); use --force to replace it`);
        }
        const twin = list.find((k) => k.publicKey === publicKey && k.name !== name);
        return { contacts: [...list.filter((k) => k.name !== name), added], result: { old, twin } };
      });
      const text = old === undefined ? `added ${name} (${publicKey})\n` : `replaced ${name} (was ${old.publicKey}, now ${publicKey})\n`;
      c.out.result(text, contactJson(added));
      if (twin !== undefined) c.out.warn(`"${twin.name}" has the same public key; inbox shows one of the two names`);
      return EXIT_OK;
    }
    case 'list': {
      arity(0, 'no arguments');
      const list = await loadContacts(path);
      const width = Math.max(0, ...list.map((k) => k.name.length));
      const text = list.length === 0 ? `no contacts (add one with "zax contacts add NAME PUBKEY")\n` : list.map((k) => `${k.name.padEnd(width)}  ${k.publicKey}\n`).join('');
      c.out.result(text, list.map(contactJson));
      return EXIT_OK;
    }
    case 'remove': {
      arity(1, 'NAME');
      const name = args[0]!;
      checkName(name);
      const gone = await updateContacts(path, (list) => {
        const gone = list.find((k) => k.name === name);
        if (gone === undefined) throw usage(c, `no contact named "${name}" (see "zax contacts list")`);
        return { contacts: list.filter((k) => k.name !== name), result: gone };
      });
      c.out.result(`removed ${name} (${gone.publicKey})\n`, contactJson(gone));
      return EXIT_OK;
    }
    case undefined:
      throw usage(c, 'give a subcommand: add, list or remove');
    default:
      throw usage(c, `unknown subcommand "${sub}" of zax contacts (add, list or remove)`);
  }
}

// ---------- watch ----------

/** A number of seconds from an option, in [min, max]. */
function secondsOption(c: Context, flag: string, value: string, min: number, max: number): number {
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw usage(c, `${flag}: expected a number of seconds from ${min} to ${max}, got "${value}"`);
  return n;
}

function countOption(c: Context, flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1)) throw usage(c, `${flag}: expected a whole number of at least 1, got "${value}"`);
  return n;
}

/** Failures worth retrying: the relay is down, slow, busy or restarting. */
function isTransient(e: unknown): boolean {
  if (e instanceof RelayNetworkError) return !['certificate-untrusted', 'certificate-invalid', 'port-speaks-https', 'port-speaks-http'].includes(e.reason);
  if (e instanceof RelayHttpError) return e.status === 401 || e.status === 408 || e.status === 429 || e.status >= 500;
  return e instanceof RelayProtocolError;
}

export async function watchCommand(c: Context): Promise<number> {
  const intervalSec = c.v.interval === undefined ? 5 : secondsOption(c, '--interval', c.v.interval, 0.1, 3600);
  const maxPolls = countOption(c, '--max-polls', c.v['max-polls']);
  const exitAfter = countOption(c, '--exit-after', c.v['exit-after']);
  const stop = new AbortController();
  // With several relays, a relay that fails is reported when it starts failing, not at every poll.
  let failing = new Set<string>();
  let failedBefore = new Set<string>();
  const onFailures = (failures: readonly RelayFailure[]): void => {
    warnFailures(c, failures.filter((f) => !failedBefore.has(f.url)), 'poll');
    failing = new Set(failures.map((f) => f.url));
  };
  const reader = await openReader(c, { signal: stop.signal, onFailures });
  const receive = async (): Promise<ReceivedMessage[]> => {
    failedBefore = failing;
    failing = new Set();
    try {
      return await reader.receive();
    } catch (e) {
      failing = failedBefore; // every relay failed: the watch's own warning says so
      throw e;
    }
  };
  const dispose = c.io.onInterrupt?.(() => stop.abort()) ?? (() => undefined);
  let failedAtEnd = false;
  try {
    await watch<ReceivedMessage>({
      poll: receive,
      emit: (m) => c.out.result(formatMessage(m), toJson(m)),
      ...(c.v.delete ? { remove: (ms: ReceivedMessage[]) => reader.remove(ms.map((m) => m.nonce)) } : {}),
      // A misconfiguration (wrong port, untrusted certificate, no relay at that URL) ends the watch
      // at its first poll; once a poll has succeeded, every failure is retried.
      isFatal: (e, { succeeded }) => succeeded === 0 && !isTransient(e),
      retryAfterMs: (e) => (e instanceof RelayHttpError && e.retryAfter !== null ? e.retryAfter * 1000 : null),
      onError: (e, delayMs) => {
        const r = describeError(explainNetworkError(e, c.v.ca));
        if (delayMs === null) {
          failedAtEnd = true;
          if (c.out.json) c.io.stderr.write(`${JSON.stringify({ error: r })}\n`);
          else c.io.stderr.write(`zax: error: ${r.message}\n`);
          return;
        }
        const retryInSec = Math.round(delayMs / 100) / 10;
        if (c.out.json) c.out.warn(r.message, { ...r, message: r.message, retryInSec });
        else c.out.warn(`${r.message}; next try in ${retryInSec} s`);
      },
      backoff: new Backoff({ baseMs: intervalSec * 1000 }),
      signal: stop.signal,
      ...(maxPolls !== undefined ? { maxPolls } : {}),
      ...(exitAfter !== undefined ? { exitAfter } : {}),
    });
  } finally {
    dispose();
  }
  return failedAtEnd ? EXIT_ERROR : EXIT_OK;
}

// ---------- showing messages ----------

function toJson(m: ReceivedMessage): Record<string, unknown> {
  return {
    nonce: m.nonce,
    time: m.time,
    from: m.from,
    kind: m.kind,
    status: m.status,
    sender: m.sender === null ? null : m.sender.publicKeyB64,
    contact: m.sender?.name ?? null,
    text: m.text,
    data: m.data,
    ...(m.uploadID !== undefined ? { uploadID: m.uploadID } : {}),
    ...('relays' in m ? { relays: (m as MultiReceivedMessage).relays } : {}),
  };
}

const MAX_RAW_CHARS = 200;

function formatInbox(messages: readonly ReceivedMessage[]): string {
  if (messages.length === 0) return 'no messages\n';
  const head = `${messages.length} message${messages.length === 1 ? '' : 's'}\n`;
  return head + messages.map((m) => `\n${formatMessage(m)}`).join('');
}

/** One message: a header line (nonce, time, kind, sender) and its text, indented. */
function formatMessage(m: ReceivedMessage): string {
  const when = Number.isFinite(m.time) ? new Date(m.time * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : String(m.time);
  const who =
    m.sender === null
      ? `from hpk ${m.from} (unknown sender)`
      : m.sender.name !== undefined
        ? `from ${m.sender.name} (${m.sender.publicKeyB64})`
        : `from ${m.sender.publicKeyB64}`;
  const out: string[] = [`${m.nonce}  ${when}  ${m.kind}  ${who}`];
  let body: string;
  if (m.status === 'decrypted') {
    body = m.kind === 'file' ? `file ${m.uploadID ?? ''}, metadata: ${m.text}` : m.text!;
  } else {
    const raw = m.data.length > MAX_RAW_CHARS ? `${m.data.slice(0, MAX_RAW_CHARS)}…` : m.data;
    body = `(${m.status === 'undecryptable' ? 'not decryptable; plain or not for this key' : 'not decrypted'}) ${raw}`;
  }
  for (const line of sanitizeForTerminal(body).split('\n')) out.push(`  ${line}`);
  return `${out.join('\n')}\n`;
}
