/**
 * The `zax` command line: argument parsing, help texts, output and exit codes (0 success, 1 error,
 * 2 usage). `runCli` takes its streams, environment and fetch as parameters, so tests run it in
 * process; `cli.ts` is the executable that calls it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { parseArgs } from 'node:util';
import { b64, decodeFixed, NONCE_BYTES } from '@zax/protocol';
import { RelayHttpError, RelayNetworkError, UsageError, ZaxClientError } from './errors.js';
import { generateIdentity, parseKey, type Identity } from './identity.js';
import { defaultIdentityPath, isIdentityFileExposed, loadIdentityFile, saveIdentityFile } from './identity-file.js';
import { Mailbox, type ReceivedMessage } from './mailbox.js';
import { normalizeBaseUrl, type FetchLike } from './relay.js';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  stdin: AsyncIterable<string | Uint8Array>;
  env: NodeJS.ProcessEnv;
  /** @default globalThis.fetch */
  fetch?: FetchLike;
}

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** A usage error in the CLI: message, then a pointer to the subcommand's help; exit 2. */
class CliUsage extends Error {
  constructor(
    message: string,
    readonly command: string | null,
  ) {
    super(message);
  }
}

const ENV_HELP = `Environment:
  ZAX_IDENTITY         identity file (default ~/.config/zax/identity.json)
  ZAX_RELAY            relay URL when --relay is not given
  ZAX_DEBUG            set to 1 to print stack traces of unexpected errors
  NODE_EXTRA_CA_CERTS  a PEM file of CA certificates to trust besides the system's (as --ca)`;

const MAIN_HELP = `zax: send and receive end-to-end encrypted messages through a Zax relay

Usage: zax <command> [options]

Commands:
  keygen   create an identity (Curve25519 key pair) and print its public key and hpk
  id       print the public key and hpk of an identity
  send     send a message to a public key
  inbox    list the messages in your mailbox, decrypting those from known senders
  delete   delete messages from your mailbox
  status   how long a sent message still lives on the relay

Options:
  -h, --help      show help (also "zax <command> --help")
  -V, --version   show the version

${ENV_HELP}

Exit codes: 0 success, 1 error, 2 usage error.
`;

const HELP: Record<string, string> = {
  keygen: `Usage: zax keygen [--out FILE] [--force]

Creates a new identity and writes it (mode 0600) to FILE, or to the default identity file.
Prints the public key and the hpk (your mailbox address). Share the public key: people need it
to write to you. Keep the identity file secret: it holds your secret key, and whoever has it can
read your mail and write as you.

Options:
  -o, --out FILE   where to write the identity (default: $ZAX_IDENTITY or ~/.config/zax/identity.json)
  -f, --force      replace an existing file
  -h, --help       show this help
`,
  id: `Usage: zax id [--id FILE]

Prints the public key and hpk of an identity.

Options:
  -i, --id FILE    identity file (default: $ZAX_IDENTITY or ~/.config/zax/identity.json)
  -h, --help       show this help
`,
  send: `Usage: zax send --relay URL --to PUBKEY [--id FILE] [--plain] [--json] [--ca FILE] MESSAGE|-

Encrypts MESSAGE to the recipient's public key (the glow.ts format, so glow.ts clients can read
it) and uploads it. With "-" the message is read from standard input (one trailing newline is
dropped). Prints the storage token, for "zax status".

Options:
  -r, --relay URL  relay base URL (default: $ZAX_RELAY)
  -t, --to PUBKEY  recipient public key (44 characters of base64)
  -i, --id FILE    identity file (default: $ZAX_IDENTITY or ~/.config/zax/identity.json)
      --plain      send unencrypted (the relay and anyone with access to it can read it)
      --json       print {"token","nonce","to"} as JSON
      --ca FILE    trust the CA certificate in FILE (PEM) for an https:// relay, e.g. a self-signed one
  -h, --help       show this help
`,
  inbox: `Usage: zax inbox --relay URL [--id FILE] [--from PUBKEY ...] [--only] [--json] [--ca FILE]

Lists every message in your mailbox (nothing is deleted). Messages from the public keys given
with --from are decrypted; others are shown as stored, marked with their sender's hpk.

Options:
  -r, --relay URL    relay base URL (default: $ZAX_RELAY)
  -i, --id FILE      identity file (default: $ZAX_IDENTITY or ~/.config/zax/identity.json)
  -f, --from PUBKEY  a correspondent's public key; repeat for several
      --only         list only messages from the --from keys
      --json         print a JSON array (nonce, time, from, kind, status, sender, text, data)
      --ca FILE      trust the CA certificate in FILE (PEM) for an https:// relay, e.g. a self-signed one
  -h, --help         show this help
`,
  delete: `Usage: zax delete --relay URL [--id FILE] [--ca FILE] NONCE...
       zax delete --relay URL [--id FILE] [--ca FILE] --all

Deletes messages from your mailbox by their nonce (as "zax inbox" shows it), or all of them.
Prints how many messages are left.

Options:
  -r, --relay URL  relay base URL (default: $ZAX_RELAY)
  -i, --id FILE    identity file (default: $ZAX_IDENTITY or ~/.config/zax/identity.json)
  -a, --all        delete every message
      --ca FILE    trust the CA certificate in FILE (PEM) for an https:// relay, e.g. a self-signed one
  -h, --help       show this help
`,
  status: `Usage: zax status --relay URL [--id FILE] [--json] [--ca FILE] TOKEN

Asks how long the message with this storage token (printed by "zax send") still lives on the
relay. A message that was deleted by its recipient, expired, or never existed is "gone".

Options:
  -r, --relay URL  relay base URL (default: $ZAX_RELAY)
  -i, --id FILE    identity file (default: $ZAX_IDENTITY or ~/.config/zax/identity.json)
      --json       print {"token","ttlSec"} (ttlSec -2 when gone)
      --ca FILE    trust the CA certificate in FILE (PEM) for an https:// relay, e.g. a self-signed one
  -h, --help       show this help
`,
};

const COMMON = {
  relay: { type: 'string', short: 'r' },
  id: { type: 'string', short: 'i' },
  ca: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const OPTIONS = {
  keygen: { out: { type: 'string', short: 'o' }, force: { type: 'boolean', short: 'f' }, help: COMMON.help },
  id: { id: COMMON.id, help: COMMON.help },
  send: { ...COMMON, to: { type: 'string', short: 't' }, plain: { type: 'boolean' }, json: { type: 'boolean' } },
  inbox: { ...COMMON, from: { type: 'string', short: 'f', multiple: true }, only: { type: 'boolean' }, json: { type: 'boolean' } },
  delete: { ...COMMON, all: { type: 'boolean', short: 'a' } },
  status: { ...COMMON, json: { type: 'boolean' } },
} as const;

type CommandName = keyof typeof OPTIONS;
const isCommand = (s: string): s is CommandName => Object.prototype.hasOwnProperty.call(OPTIONS, s);

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Runs the CLI; resolves to the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === undefined) {
      io.stderr.write(MAIN_HELP);
      return EXIT_USAGE;
    }
    if (first === '-h' || first === '--help' || first === 'help') {
      const topic = first === 'help' ? rest[0] : undefined;
      io.stdout.write(topic !== undefined && isCommand(topic) ? HELP[topic]! : MAIN_HELP);
      return EXIT_OK;
    }
    if (first === '-V' || first === '--version') {
      io.stdout.write(`${version()}\n`);
      return EXIT_OK;
    }
    if (!isCommand(first)) throw new CliUsage(`unknown command "${first}"`, null);
    return await runCommand(first, rest, io);
  } catch (e) {
    return report(e, io, isCommand(first ?? '') ? (first as CommandName) : null);
  }
}

function report(e: unknown, io: CliIo, command: CommandName | null): number {
  if (e instanceof CliUsage || e instanceof UsageError) {
    const cmd = e instanceof CliUsage ? e.command : command;
    io.stderr.write(`zax: ${e.message}\nRun "zax ${cmd === null ? '' : `${cmd} `}--help" for usage.\n`);
    return EXIT_USAGE;
  }
  if (e instanceof RelayHttpError) {
    io.stderr.write(`zax: error: ${e.message}${hint(e)}\n`);
    return EXIT_ERROR;
  }
  if (e instanceof CliNetworkError) {
    io.stderr.write(`zax: error: ${e.message}\n`);
    return EXIT_ERROR;
  }
  if (e instanceof ZaxClientError) {
    io.stderr.write(`zax: error: ${e.message}\n`);
    return EXIT_ERROR;
  }
  const debug = io.env.ZAX_DEBUG !== undefined && io.env.ZAX_DEBUG !== '' && io.env.ZAX_DEBUG !== '0';
  const detail = debug && e instanceof Error && e.stack ? e.stack : e instanceof Error ? e.message : String(e);
  io.stderr.write(`zax: unexpected error: ${detail}\n`);
  return EXIT_ERROR;
}

function hint(e: RelayHttpError): string {
  switch (e.status) {
    case 403:
      // The gatekeeper's REQUIRE_HTTPS refusal says so; the core refuses anything without the
      // relay's internal secret with a bare 403.
      return e.details === 'HTTPS required'
        ? ' (this relay takes requests over HTTPS only: use an https:// URL)'
        : " (this looks like the relay's core port, which only the relay's gatekeeper may call: use the public gatekeeper port, 8080 by default)";
    case 400:
      return ' (is this machine\'s clock right? the relay accepts request nonces within 60 s of its own)';
    case 404:
      return ' (is the URL a Zax relay?)';
    case 413:
      return ' (the message is too large for this relay)';
    case 429:
      return e.details === 'Mailbox is full.' ? ' (the recipient has to delete messages first)' : ' (slow down)';
    case 503:
      return ' (try again later)';
    default:
      return '';
  }
}

/**
 * parseArgs, with the checks of its strict mode done here so that the messages name the option
 * plainly (node's own end in an unbalanced quote).
 */
function parse<C extends CommandName>(command: C, args: readonly string[]) {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = OPTIONS[command];
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS[command], allowPositionals: true, strict: false, tokens: true });
  } catch (e) {
    throw new CliUsage(e instanceof Error ? e.message : String(e), command);
  }
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    const def = Object.prototype.hasOwnProperty.call(options, t.name) ? options[t.name] : undefined;
    if (def === undefined) throw new CliUsage(unknownOption(command, t.rawName), command);
    if (def.type === 'string' && t.value === undefined) throw new CliUsage(`${t.rawName} needs a value`, command);
    // As strict mode does: "--out --force" is a forgotten value, not a file named "--force".
    if (def.type === 'string' && t.inlineValue === false && t.value?.startsWith('-')) {
      throw new CliUsage(`${t.rawName} needs a value (one that starts with "-" is written --${t.name}=${t.value})`, command);
    }
    if (def.type === 'boolean' && t.inlineValue === true) throw new CliUsage(`${t.rawName} takes no value`, command);
  }
  return parsed;
}

function unknownOption(command: CommandName, raw: string): string {
  const why =
    command === 'send' && raw === '--file'
      ? ' (send takes the message as one argument, or "-" to read it from standard input: zax send ... - < FILE)'
      : command === 'send'
        ? ' (a message that starts with "-" goes after "--": zax send ... -- "-MESSAGE")'
        : '';
  return `unknown option "${raw}" for zax ${command}${why}`;
}

interface Values {
  relay?: string;
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
}

async function runCommand(command: CommandName, args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(command, args);
  if (values.help) {
    io.stdout.write(HELP[command]!);
    return EXIT_OK;
  }
  const v = values as Values;
  try {
    return await runParsed(command, v, positionals, io);
  } catch (e) {
    throw explainNetworkError(e, v.ca);
  }
}

async function runParsed(command: CommandName, v: Values, positionals: readonly string[], io: CliIo): Promise<number> {
  const usage = (msg: string): CliUsage => new CliUsage(msg, command);
  const noPositionals = (): void => {
    if (positionals.length > 0) throw usage(`unexpected argument "${positionals[0]}"`);
  };
  const key = (value: string, what: string): Uint8Array => {
    try {
      return parseKey(value, what);
    } catch (e) {
      throw usage(e instanceof Error ? e.message : String(e));
    }
  };
  const openMailbox = async (relay: string): Promise<Mailbox> => {
    const identity = await loadIdentity(v.id, io);
    const fetch = v.ca !== undefined ? await caFetch(v.ca) : io.fetch;
    return Mailbox.create({ url: relay, identity, ...(fetch ? { fetch } : {}) });
  };

  switch (command) {
    case 'keygen': {
      noPositionals();
      const path = v.out ?? defaultIdentityPath(io.env);
      const id = generateIdentity();
      await saveIdentityFile(path, id, { overwrite: v.force === true });
      io.stdout.write(describeIdentity(id));
      io.stderr.write(
        `identity written to ${path}\n` +
          'Share your public key (above) with the people who will write to you; the hpk is your mailbox address.\n' +
          'Keep the identity file secret (and backed up): it holds your secret key; whoever has it can read your mail and write as you.\n',
      );
      return EXIT_OK;
    }
    case 'id': {
      noPositionals();
      io.stdout.write(describeIdentity(await loadIdentity(v.id, io)));
      return EXIT_OK;
    }
    case 'send': {
      if (v.to === undefined) throw usage('--to PUBKEY is required');
      const to = key(v.to, '--to');
      if (positionals.length !== 1) throw usage(positionals.length === 0 ? 'MESSAGE is required ("-" reads standard input)' : 'give the message as one argument (quote it)');
      const relay = relayUrl(v.relay, io, command);
      const text = positionals[0] === '-' ? dropTrailingNewline(await readAll(io.stdin)) : positionals[0]!;
      // glow.ts shows an empty decrypted text as its ciphertext, so an empty message is refused.
      if (text === '') throw usage('the message is empty');
      const mailbox = await openMailbox(relay);
      const sent = await mailbox.send(to, text, { encrypt: v.plain !== true });
      io.stdout.write(v.json ? `${JSON.stringify(sent)}\n` : `${sent.token}\n`);
      return EXIT_OK;
    }
    case 'inbox': {
      noPositionals();
      const from = (v.from ?? []).map((k) => key(k, '--from'));
      if (v.only && from.length === 0) throw usage('--only needs at least one --from PUBKEY');
      const relay = relayUrl(v.relay, io, command);
      const mailbox = await openMailbox(relay);
      for (const pk of from) mailbox.addGuest(pk);
      const messages = await mailbox.receive(v.only ? { from } : {});
      io.stdout.write(v.json ? `${JSON.stringify(messages.map(toJson), null, 2)}\n` : formatInbox(messages));
      return EXIT_OK;
    }
    case 'delete': {
      if (v.all && positionals.length > 0) throw usage('give NONCE... or --all, not both');
      if (!v.all && positionals.length === 0) throw usage('give the NONCE of each message to delete, or --all');
      for (const n of positionals) {
        if (decodeFixed(n, NONCE_BYTES) === null) throw usage(`not a message nonce (32 characters of base64): "${n}"`);
      }
      const relay = relayUrl(v.relay, io, command);
      const mailbox = await openMailbox(relay);
      const left = v.all ? await mailbox.deleteAll() : await mailbox.delete(positionals);
      io.stdout.write(`${left} message${left === 1 ? '' : 's'} left\n`);
      return EXIT_OK;
    }
    case 'status': {
      if (positionals.length !== 1) throw usage('give exactly one TOKEN');
      const token = positionals[0]!;
      if (decodeFixed(token, 32) === null) throw usage(`not a storage token (44 characters of base64): "${token}"`);
      const relay = relayUrl(v.relay, io, command);
      const mailbox = await openMailbox(relay);
      const ttl = await mailbox.messageStatus(token);
      if (v.json) io.stdout.write(`${JSON.stringify({ token, ttlSec: ttl })}\n`);
      else io.stdout.write(ttl >= 0 ? `live, expires in ${formatDuration(ttl)}\n` : 'gone (deleted by the recipient, expired, or unknown)\n');
      return EXIT_OK;
    }
  }
}

/** A network failure reworded for the CLI (its fixes are CLI options). */
class CliNetworkError extends ZaxClientError {}

/** An untrusted relay certificate: the fix is --ca or NODE_EXTRA_CA_CERTS. Other errors pass through. */
function explainNetworkError(e: unknown, caFile: string | undefined): unknown {
  if (!(e instanceof RelayNetworkError) || e.reason !== 'certificate-untrusted') return e;
  const what = `cannot reach ${e.url ?? 'the relay'}: the relay's TLS certificate is not trusted (${e.code ?? 'unknown CA'})`;
  return new CliNetworkError(
    caFile === undefined
      ? `${what}. If this is your relay, trust its certificate for this run with --ca FILE (FILE: the PEM certificate of the CA that signed it, or the self-signed certificate itself), or set NODE_EXTRA_CA_CERTS=FILE`
      : `${what}, not even with --ca ${caFile}: that file does not hold the certificate that signed the relay's`,
    { cause: e },
  );
}

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

function relayUrl(flag: string | undefined, io: CliIo, command: CommandName): string {
  const url = flag ?? (io.env.ZAX_RELAY || undefined);
  if (url === undefined) throw new CliUsage('--relay URL is required (or set ZAX_RELAY)', command);
  try {
    // Checked before the identity is read, so a mistyped URL is a usage error.
    return normalizeBaseUrl(url);
  } catch (e) {
    throw new CliUsage(e instanceof Error ? e.message : String(e), command);
  }
}

async function loadIdentity(flag: string | undefined, io: CliIo): Promise<Identity> {
  const path = flag ?? defaultIdentityPath(io.env);
  const id = await loadIdentityFile(path);
  try {
    if (await isIdentityFileExposed(path)) io.stderr.write(`zax: warning: ${path} is readable by other users (chmod 600 it)\n`);
  } catch {
    // stat failing right after a successful read is not worth failing the command
  }
  return id;
}

function describeIdentity(id: Identity): string {
  return `public key: ${b64(id.publicKey)}\nhpk:        ${b64(id.hpk)}\n`;
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

function formatDuration(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  const parts = [d ? `${d}d` : '', d || h ? `${h}h` : '', d || h || m ? `${m}m` : '', `${s}s`].filter(Boolean);
  return `${parts.join(' ')} (${sec} s)`;
}

function toJson(m: ReceivedMessage): Record<string, unknown> {
  return {
    nonce: m.nonce,
    time: m.time,
    from: m.from,
    kind: m.kind,
    status: m.status,
    sender: m.sender === null ? null : m.sender.publicKeyB64,
    text: m.text,
    data: m.data,
    ...(m.uploadID !== undefined ? { uploadID: m.uploadID } : {}),
  };
}

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

const MAX_RAW_CHARS = 200;

function formatInbox(messages: readonly ReceivedMessage[]): string {
  if (messages.length === 0) return 'no messages\n';
  const out: string[] = [`${messages.length} message${messages.length === 1 ? '' : 's'}`];
  for (const m of messages) {
    const when = Number.isFinite(m.time) ? new Date(m.time * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : String(m.time);
    const who = m.sender !== null ? `from ${m.sender.publicKeyB64}` : `from hpk ${m.from} (unknown sender)`;
    out.push('', `${m.nonce}  ${when}  ${m.kind}  ${who}`);
    let body: string;
    if (m.status === 'decrypted') {
      body = m.kind === 'file' ? `file ${m.uploadID ?? ''}, metadata: ${m.text}` : m.text!;
    } else {
      const raw = m.data.length > MAX_RAW_CHARS ? `${m.data.slice(0, MAX_RAW_CHARS)}…` : m.data;
      body = `(${m.status === 'undecryptable' ? 'not decryptable; plain or not for this key' : 'not decrypted'}) ${raw}`;
    }
    for (const line of sanitizeForTerminal(body).split('\n')) out.push(`  ${line}`);
  }
  return `${out.join('\n')}\n`;
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
