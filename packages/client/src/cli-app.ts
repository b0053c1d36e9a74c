/**
 * The `zax` command line: argument parsing, help texts, output and exit codes (0 success, 1 error,
 * 2 usage). Each command is a row of `COMMANDS` (summary, help, options, run); `--json` makes
 * every command print one JSON document (watch: NDJSON) and report errors as one JSON line on
 * stderr. `runCli` takes its streams, environment and fetch as parameters, so tests run it in
 * process; `cli.ts` is the executable that calls it.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { lstat, readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { parseArgs } from 'node:util';
import { b64, decodeFixed, NONCE_BYTES } from '@zax/protocol';
import { contactHpk, contactNameProblem, ContactsError, CONTACT_NAME, contactsPathFor, loadContacts, saveContacts, type Contact } from './contacts-file.js';
import { listUploadStates, pendingFile, removeUploadState, safeFileName, saveUploadState, uploadsDirFor, type PendingFile, type UploadState } from './cli-files.js';
import { AllRelaysFailedError, FileTransferError, IdentityError, RelayHttpError, RelayNetworkError, RelayProtocolError, UsageError, ZaxClientError, type RelayFailure } from './errors.js';
import type { FileMetadata, FileUploadCheckpoint, SentFile } from './files.js';
import { generateIdentity, parseKey, type Identity } from './identity.js';
import { defaultIdentityPath, isIdentityFileExposed, loadIdentityFile, saveIdentityFile } from './identity-file.js';
import { Mailbox, type ReceivedMessage } from './mailbox.js';
import { createProgress, formatBytes, type TransferProgress } from './progress.js';
import { normalizeBaseUrl, type FetchLike } from './relay.js';
import { isRelayFailure, MultiMailbox, type MultiReceivedMessage } from './relays.js';
import { Backoff, watch } from './watch.js';

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

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
/** A transfer stopped by SIGINT/SIGTERM (128 + SIGINT's number, as shells report it). */
export const EXIT_INTERRUPTED = 130;

/** A usage error in the CLI: message, then a pointer to the subcommand's help; exit 2. */
class CliUsage extends Error {
  constructor(
    message: string,
    readonly command: string | null,
  ) {
    super(message);
  }
}

const ID_DEFAULT = '$ZAX_IDENTITY or ~/.config/zax/identity.json';

const ENV_HELP = `Environment:
  ZAX_IDENTITY         identity file (default ~/.config/zax/identity.json)
  ZAX_RELAY            relay URL when --relay is not given (several: comma-separated)
  ZAX_DEBUG            set to 1 to print stack traces of unexpected errors
  NODE_EXTRA_CA_CERTS  a PEM file of CA certificates to trust besides the system's (as --ca)`;

const JSON_HELP = `With --json, every command prints one JSON document on standard output (watch: one JSON
object per line), warnings are {"warning":{"message",…}} lines and errors one
{"error":{"message","kind","status"?}} line on standard error, with the same exit codes; the
progress of send-file and receive-file is {"progress":{…}} lines on standard error.`;

const RELAYS_HELP = `Several relays: repeat --relay (or list them in ZAX_RELAY, comma-separated) and the commands
go through k of them (--copies K, default 2), chosen from the
recipient's address; sender and recipient must give the same list and K. A relay that fails is
a warning; the command succeeds if one relay did. send-file, files and receive-file too (an
upload through several relays cannot be resumed).`;

// ---------- options ----------

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
}
type OptionTable = Record<string, OptionSpec>;

/** Options shared by commands, each defined once (and its help line with it). */
const OPT = {
  relay: { type: 'string', short: 'r', multiple: true },
  copies: { type: 'string', short: 'k' },
  id: { type: 'string', short: 'i' },
  ca: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  force: { type: 'boolean', short: 'f' },
  from: { type: 'string', short: 'f', multiple: true },
  only: { type: 'boolean' },
} as const satisfies OptionTable;

/** The options of every command that talks to one relay. */
const ONE_RELAY_OPTIONS = { relay: OPT.relay, id: OPT.id, ca: OPT.ca, json: OPT.json, help: OPT.help } as const satisfies OptionTable;
/** The options of the commands that can go through several relays. */
const RELAY_OPTIONS = { ...ONE_RELAY_OPTIONS, copies: OPT.copies } as const satisfies OptionTable;

const H = {
  relay: '  -r, --relay URL    relay base URL (default: $ZAX_RELAY); repeat for several relays',
  copies: '  -k, --copies K     with several relays: relays per message (default 2; the same K on both sides)',
  id: `  -i, --id FILE      identity file (default: ${ID_DEFAULT})`,
  ca: '      --ca FILE      trust the CA certificate in FILE (PEM) for an https:// relay, e.g. a self-signed one',
  help: '  -h, --help         show this help',
  from: '  -f, --from WHO     a contact name or public key to decrypt messages from; repeat for several',
  only: '      --only         list only messages from the --from senders',
};

/** Everything any command's options can hold (parseArgs' values, by option name). */
interface Values {
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
class Output {
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

// ---------- commands ----------

interface Context {
  command: string;
  v: Values;
  positionals: readonly string[];
  io: CliIo;
  out: Output;
}

interface CommandSpec {
  /** One line for "zax --help". */
  summary: string;
  help: string;
  options: OptionTable;
  run(c: Context): Promise<number>;
}

const COMMANDS: Record<string, CommandSpec> = {
  keygen: {
    summary: 'create an identity (Curve25519 key pair) and print its public key and hpk',
    help: `Usage: zax keygen [--out FILE] [--force] [--json]

Creates a new identity and writes it (mode 0600) to FILE, or to the default identity file.
Prints the public key and the hpk (your mailbox address). Share the public key: people need it
to write to you. Keep the identity file secret: it holds your secret key, and whoever has it can
read your mail and write as you.

Options:
  -o, --out FILE     where to write the identity (default: ${ID_DEFAULT})
  -f, --force        replace an existing file
      --json         print {"publicKey","hpk","path"}
${H.help}
`,
    options: { out: { type: 'string', short: 'o' }, force: OPT.force, json: OPT.json, help: OPT.help },
    run: keygen,
  },
  id: {
    summary: 'print the public key and hpk of an identity',
    help: `Usage: zax id [--id FILE] [--json]

Prints the public key and hpk of an identity.

Options:
${H.id}
      --json         print {"publicKey","hpk","path"}
${H.help}
`,
    options: { id: OPT.id, json: OPT.json, help: OPT.help },
    run: showId,
  },
  send: {
    summary: 'send a message to a contact or public key',
    help: `Usage: zax send --relay URL --to WHO [--id FILE] [--plain] [--json] [--ca FILE] MESSAGE|-

Encrypts MESSAGE to the recipient's public key (the glow.ts format, so glow.ts clients can read
it) and uploads it. WHO is a contact name ("zax contacts") or a public key. With "-" the message
is read from standard input (one trailing newline is dropped). Prints the storage token, for
"zax status". With several relays the message goes to K of them (one warning per relay that
fails; exit 0 if one stored it).

Options:
${H.relay}
${H.copies}
  -t, --to WHO       recipient: a contact name, or a public key (44 characters of base64)
${H.id}
      --plain        send unencrypted (the relay and anyone with access to it can read it)
      --json         print {"token","nonce","to","publicKey","contact"} (to: the recipient's hpk; with several
                     relays also "relays": [{"url","token"} or {"url","error"}])
${H.ca}
${H.help}
`,
    options: { ...RELAY_OPTIONS, to: { type: 'string', short: 't' }, plain: { type: 'boolean' } },
    run: send,
  },
  inbox: {
    summary: 'list the messages in your mailbox, decrypting those from your contacts',
    help: `Usage: zax inbox --relay URL [--id FILE] [--from WHO ...] [--only] [--json] [--ca FILE]

Lists every message in your mailbox (nothing is deleted). Messages from your contacts and from
the senders given with --from are decrypted, and contacts are shown by name; others are shown as
stored, marked with their sender's hpk. With several relays, your K relays are read and each
message is listed once.

Options:
${H.relay}
${H.copies}
${H.id}
${H.from}
${H.only}
      --json         print a JSON array of {nonce, time, from, kind, status, sender, contact, text, data}
                     (file messages add uploadID; with several relays, "relays": the URLs that hold it)
${H.ca}
${H.help}
`,
    options: { ...RELAY_OPTIONS, from: OPT.from, only: OPT.only },
    run: inbox,
  },
  watch: {
    summary: 'print new messages as they arrive, until interrupted',
    help: `Usage: zax watch --relay URL [--id FILE] [--from WHO ...] [--only] [--json] [--interval SEC]
                 [--delete] [--max-polls N] [--exit-after N] [--ca FILE]

Polls your mailbox and prints each new message once, as "zax inbox" does (decrypting messages
from your contacts and the --from senders). After a poll that brings something new the next one
comes after SEC seconds; while polls bring nothing, or fail, the wait doubles up to 60 s (with
some jitter, and never shorter than a relay's Retry-After). A failed poll prints a warning and
the watch goes on, except a misconfiguration at the first poll (an untrusted certificate, the
wrong scheme or port, no relay at the URL), which is an error. Ctrl-C (SIGINT) or SIGTERM stops
it (exit 0).

Options:
${H.relay}
${H.copies}
${H.id}
${H.from}
${H.only}
      --json         print each message as one JSON object per line (the fields of "zax inbox --json")
      --interval SEC the base interval between polls, in seconds (default 5, at least 0.1)
      --delete       delete each message from the mailbox once it is printed
      --max-polls N  for scripts: stop after N polls (exit 1 if the last one failed)
      --exit-after N for scripts: stop once N messages are printed
${H.ca}
${H.help}
`,
    options: {
      ...RELAY_OPTIONS,
      from: OPT.from,
      only: OPT.only,
      interval: { type: 'string' },
      delete: { type: 'boolean' },
      'max-polls': { type: 'string' },
      'exit-after': { type: 'string' },
    },
    run: watchCommand,
  },
  delete: {
    summary: 'delete messages from your mailbox',
    help: `Usage: zax delete --relay URL [--id FILE] [--json] [--ca FILE] NONCE...
       zax delete --relay URL [--id FILE] [--json] [--ca FILE] --all

Deletes messages from your mailbox by their nonce (as "zax inbox" shows it), or all of them.
Prints how many messages are left (with several relays: on each of your K relays).

Options:
${H.relay}
${H.copies}
${H.id}
  -a, --all          delete every message
      --json         print {"deleted": [NONCE...] or "all", "left"} (several relays: "left" is the most
                     left on one relay, and "relays": [{"url","left"} or {"url","error"}])
${H.ca}
${H.help}
`,
    options: { ...RELAY_OPTIONS, all: { type: 'boolean', short: 'a' } },
    run: deleteCommand,
  },
  status: {
    summary: 'how long a sent message still lives on the relay',
    help: `Usage: zax status --relay URL [--id FILE] [--json] [--ca FILE] TOKEN

Asks how long the message with this storage token (printed by "zax send") still lives on the
relay. A message that was deleted by its recipient, expired, or never existed is "gone".
With several relays every relay of the list is asked (the token does not say which K carry the
message; they all give it the same token): it is live while one of them has it.

Options:
${H.relay}
${H.copies}
${H.id}
      --json         print {"token","ttlSec"} (ttlSec -2 when gone; several relays: the longest, and
                     "relays": [{"url","ttlSec"} or {"url","error"}])
${H.ca}
${H.help}
`,
    options: RELAY_OPTIONS,
    run: status,
  },
  'send-file': {
    summary: 'send a file to a contact or public key, with progress; --resume continues one',
    help: `Usage: zax send-file --relay URL --to WHO [--name NAME] [--chunk-size BYTES] [--id FILE] [--json]
                     [--ca FILE] FILE
       zax send-file --resume --relay URL --to WHO [--id FILE] [--json] [--ca FILE] FILE

Encrypts FILE (read from disk as it goes) to the recipient's public key and uploads it in
chunks (the glow.ts format, so glow.ts clients can receive it); the recipient gets a file message
("zax files", "zax receive-file"). Progress goes to standard error: a bar on a terminal, a line
every 10 % otherwise. Prints the uploadID, the nonce of the file message and its storage token.

While it runs, a checkpoint (it holds the file key: keep it as secret as the identity file) is
kept in uploads/ beside the identity file, mode 0600, and removed when the file is sent. If the
upload is interrupted (Ctrl-C, a network failure), run the same command with --resume: it goes on
from the last chunk the relay acknowledged, as long as FILE has not changed. Ctrl-C (SIGINT) or
SIGTERM stops it cleanly and prints that command (exit 130). With several relays the file goes to
K of them, read from disk once; a relay that fails is a warning; such an upload is not resumed.

Options:
${H.relay}
${H.copies}
  -t, --to WHO       recipient: a contact name, or a public key (44 characters of base64)
  -n, --name NAME    the file name the recipient sees (default: FILE's own name)
      --chunk-size BYTES
                     plaintext bytes per chunk (default and at most: the relay's limit)
      --resume       continue the interrupted upload of FILE to WHO
${H.id}
      --json         print {"uploadID","nonce","token","to","publicKey","contact","name","size","chunks",
                     "resumedFrom"} (several relays: also "relays", each {"url","uploadID","token"} or
                     {"url","error"}); progress as {"progress":{…}} lines on standard error
${H.ca}
${H.help}
`,
    options: {
      ...RELAY_OPTIONS,
      to: { type: 'string', short: 't' },
      name: { type: 'string', short: 'n' },
      'chunk-size': { type: 'string' },
      resume: { type: 'boolean' },
    },
    run: sendFileCommand,
  },
  files: {
    summary: 'list the files sent to you (name, size, sender, upload status)',
    help: `Usage: zax files --relay URL [--id FILE] [--from WHO ...] [--json] [--ca FILE]

Lists the file messages in your mailbox: name, size, sender, uploadID, nonce, and whether the
upload is complete on the relay. The names and sizes of files from your contacts and the --from
senders are readable; others are shown as from an unknown sender. Nothing is downloaded or
deleted ("zax receive-file" does that).

Options:
${H.relay}
${H.copies}
${H.id}
${H.from}
      --json         print a JSON array of {"uploadID","nonce","time","name","size","sender","contact",
                     "from","status","bytesStored"} (name and size null when unreadable; status: START,
                     UPLOADING, COMPLETE, NOT_FOUND, or null when the relay could not say)
${H.ca}
${H.help}
`,
    options: { ...RELAY_OPTIONS, from: OPT.from },
    run: filesCommand,
  },
  'receive-file': {
    summary: 'download a file sent to you, with progress',
    help: `Usage: zax receive-file --relay URL [--out PATH|-] [--force] [--delete] [--from WHO ...]
                        [--id FILE] [--json] [--ca FILE] UPLOAD_ID|NONCE

Downloads the file of a file message ("zax files" lists them, by uploadID and nonce), decrypts
it and writes it, by default under its name in the current directory. The name comes from the
sender, so only its last part is used, without control characters or leading dots: it can never
point outside the directory. The file is written to a temporary file beside it (mode 0600) and
renamed at the end; an existing file is never replaced without --force. Progress goes to
standard error. Ctrl-C (SIGINT) or SIGTERM stops it and removes the partial file (exit 130).
With several relays, it comes from one that holds it (the next one if a download fails).

Options:
${H.relay}
${H.copies}
  -o, --out PATH     where to write: a directory (the file keeps its name), a file name, or "-"
                     for standard output
  -f, --force        replace an existing file
      --delete       after a complete download, delete the file and its message from the relay
${H.from}
${H.id}
      --json         print {"uploadID","nonce","name","path","size","sha256","deleted"} (path null
                     with --out -, which cannot go with --json); progress as {"progress":{…}} lines
${H.ca}
${H.help}
`,
    options: {
      ...RELAY_OPTIONS,
      out: { type: 'string', short: 'o' },
      force: OPT.force,
      delete: { type: 'boolean' },
      from: OPT.from,
    },
    run: receiveFileCommand,
  },
  contacts: {
    summary: 'name the public keys of your correspondents (add, list, remove)',
    help: `Usage: zax contacts add NAME PUBKEY [--force] [--id FILE] [--json]
       zax contacts list [--id FILE] [--json]
       zax contacts remove NAME [--id FILE] [--json]

Contacts name public keys: "zax send --to NAME", "zax inbox --from NAME", and inbox and watch
decrypt messages from every contact and show the contact's name. A NAME is 1 to 64 letters,
digits, ".", "_" or "-", not starting with "-". Contacts belong to an identity: they are kept
next to its file (identity.json: identity.contacts.json), mode 0600.

Options:
${H.id}
  -f, --force        add: replace a contact of that name
      --json         add, remove: print {"name","publicKey","hpk"}; list: a JSON array of them
${H.help}
`,
    options: { id: OPT.id, force: OPT.force, json: OPT.json, help: OPT.help },
    run: contacts,
  },
};

const MAIN_HELP = `zax: send and receive end-to-end encrypted messages through a Zax relay

Usage: zax <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)}${c.summary}`)
  .join('\n')}

Options:
  -h, --help      show help (also "zax <command> --help")
  -V, --version   show the version

${RELAYS_HELP}

${ENV_HELP}

${JSON_HELP}

Exit codes: 0 success, 1 error, 2 usage error, 130 transfer interrupted (send-file, receive-file).
`;

const isCommand = (s: string): boolean => Object.prototype.hasOwnProperty.call(COMMANDS, s);

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** True when `--json` comes before any `--` (so even a usage error is reported as JSON). */
function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

/** Runs the CLI; resolves to the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [first, ...rest] = argv;
  const command = first !== undefined && isCommand(first) ? first : null;
  const json = wantsJson(rest);
  try {
    if (first === undefined) {
      io.stderr.write(MAIN_HELP);
      return EXIT_USAGE;
    }
    if (first === '-h' || first === '--help' || first === 'help') {
      const topic = first === 'help' ? rest[0] : undefined;
      io.stdout.write(topic !== undefined && isCommand(topic) ? COMMANDS[topic]!.help : MAIN_HELP);
      return EXIT_OK;
    }
    if (first === '-V' || first === '--version') {
      io.stdout.write(`${version()}\n`);
      return EXIT_OK;
    }
    if (command === null) throw new CliUsage(`unknown command "${first}"`, null);
    return await runCommand(command, rest, io);
  } catch (e) {
    return report(e, io, command, json);
  }
}

/** How an error is reported: its message (with the hint), exit code, and JSON fields. */
export interface ErrorReport {
  message: string;
  /** usage, relay (an HTTP status), network, identity, contacts, protocol, error, unexpected */
  kind: string;
  status?: number;
  reason?: string;
  retryAfterSec?: number;
  /** An interrupted upload: the command that continues it. */
  resume?: string;
}

/** A transfer stopped by SIGINT/SIGTERM: exit 130, kind `interrupted`. */
class Interrupted extends ZaxClientError {
  constructor(
    message: string,
    readonly resume?: string,
  ) {
    super(message);
  }
}

function describeError(e: unknown, debug = false): ErrorReport {
  if (e instanceof CliUsage || e instanceof UsageError) return { message: e.message, kind: 'usage' };
  if (e instanceof Interrupted) return { message: e.message, kind: 'interrupted', ...(e.resume !== undefined ? { resume: e.resume } : {}) };
  if (e instanceof RelayHttpError) {
    return { message: `${e.message}${hint(e)}`, kind: 'relay', status: e.status, ...(e.retryAfter !== null ? { retryAfterSec: e.retryAfter } : {}) };
  }
  if (e instanceof CliNetworkError) return { message: e.message, kind: 'network', reason: 'certificate-untrusted' };
  if (e instanceof RelayNetworkError) return { message: e.message, kind: 'network', reason: e.reason };
  if (e instanceof IdentityError) return { message: e.message, kind: 'identity' };
  if (e instanceof ContactsError) return { message: e.message, kind: 'contacts' };
  if (e instanceof RelayProtocolError) return { message: e.message, kind: 'protocol' };
  if (e instanceof ZaxClientError) return { message: e.message, kind: 'error' };
  const detail = debug && e instanceof Error && e.stack ? e.stack : e instanceof Error ? e.message : String(e);
  return { message: detail, kind: 'unexpected' };
}

function report(e: unknown, io: CliIo, command: string | null, json: boolean): number {
  const debug = io.env.ZAX_DEBUG !== undefined && io.env.ZAX_DEBUG !== '' && io.env.ZAX_DEBUG !== '0';
  const r = describeError(e, debug && !json);
  const code = r.kind === 'usage' ? EXIT_USAGE : r.kind === 'interrupted' ? EXIT_INTERRUPTED : EXIT_ERROR;
  if (json) {
    io.stderr.write(`${JSON.stringify({ error: r })}\n`);
  } else if (r.kind === 'usage') {
    const cmd = e instanceof CliUsage ? e.command : command;
    io.stderr.write(`zax: ${r.message}\nRun "zax ${cmd === null ? '' : `${cmd} `}--help" for usage.\n`);
  } else if (r.kind === 'interrupted') {
    io.stderr.write(`zax: ${r.message}\n`);
  } else {
    io.stderr.write(`zax: ${r.kind === 'unexpected' ? 'unexpected error' : 'error'}: ${r.message}\n`);
  }
  return code;
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
function parse(command: string, args: readonly string[]) {
  const options = COMMANDS[command]!.options;
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: false, tokens: true });
  } catch (e) {
    throw new CliUsage(e instanceof Error ? e.message : String(e), command);
  }
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    const def = Object.prototype.hasOwnProperty.call(options, t.name) ? options[t.name] : undefined;
    if (def === undefined) throw new CliUsage(unknownOption(command, t.rawName), command);
    if (def.type === 'string' && t.value === undefined) throw new CliUsage(`${t.rawName} needs a value`, command);
    // As strict mode does: "--out --force" is a forgotten value, not a file named "--force".
    if (def.type === 'string' && t.inlineValue === false && t.value?.startsWith('-') && t.value !== '-') {
      throw new CliUsage(`${t.rawName} needs a value (one that starts with "-" is written --${t.name}=${t.value})`, command);
    }
    if (def.type === 'boolean' && t.inlineValue === true) throw new CliUsage(`${t.rawName} takes no value`, command);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

function unknownOption(command: string, raw: string): string {
  const why =
    command === 'send' && raw === '--file'
      ? ' (send takes the message as one argument, or "-" to read it from standard input: zax send ... - < FILE)'
      : command === 'send'
        ? ' (a message that starts with "-" goes after "--": zax send ... -- "-MESSAGE")'
        : '';
  return `unknown option "${raw}" for zax ${command}${why}`;
}

async function runCommand(command: string, args: readonly string[], io: CliIo): Promise<number> {
  const { values: v, positionals } = parse(command, args);
  if (v.help) {
    io.stdout.write(COMMANDS[command]!.help);
    return EXIT_OK;
  }
  try {
    return await COMMANDS[command]!.run({ command, v, positionals, io, out: new Output(io, v.json === true) });
  } catch (e) {
    throw explainNetworkError(e, v.ca);
  }
}

// ---------- helpers of the commands ----------

const usage = (c: Context, msg: string): CliUsage => new CliUsage(msg, c.command);

function noPositionals(c: Context): void {
  if (c.positionals.length > 0) throw usage(c, `unexpected argument "${c.positionals[0]}"`);
}

const identityPath = (c: Context): string => c.v.id ?? defaultIdentityPath(c.io.env);
const contactsPath = (c: Context): string => contactsPathFor(identityPath(c));

/** A correspondent named on the command line. */
interface Peer {
  publicKey: Uint8Array;
  publicKeyB64: string;
  /** Its contact name, when it is a contact. */
  contact: string | null;
}

/** A contact name or a public key, from `flag` (e.g. "--to"). An unknown name is a usage error. */
function resolvePeer(c: Context, contacts: readonly Contact[], value: string, flag: string): Peer {
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

type GuestList = Iterable<{ publicKey: string | Uint8Array; name?: string }>;

/** The fetch of this run: --ca's, or the io's; with `signal`, stopping cuts a request in flight short. */
async function cliFetch(c: Context, signal?: AbortSignal): Promise<FetchLike | undefined> {
  const base = c.v.ca !== undefined ? await caFetch(c.v.ca) : c.io.fetch;
  if (signal === undefined) return base;
  const inner: FetchLike = base ?? ((url, init) => globalThis.fetch(url, init));
  return (url, init) => inner(url, { ...init, signal: init.signal ? AbortSignal.any([init.signal, signal]) : signal });
}

async function openMailbox(c: Context, relay: string, options: { guests?: GuestList; signal?: AbortSignal } = {}): Promise<Mailbox> {
  const identity = await loadIdentity(c);
  const fetch = await cliFetch(c, options.signal);
  return Mailbox.create({ url: relay, identity, ...(fetch ? { fetch } : {}), ...(options.guests ? { guests: options.guests } : {}) });
}

async function openMulti(c: Context, r: Relays, options: { guests?: GuestList; signal?: AbortSignal } = {}): Promise<MultiMailbox> {
  const identity = await loadIdentity(c);
  const fetch = await cliFetch(c, options.signal);
  return new MultiMailbox({ urls: r.urls, k: r.copies, identity, ...(fetch ? { fetch } : {}), ...(options.guests ? { guests: options.guests } : {}) });
}

/** One relay's error, as the CLI reports errors (its `message`, `kind`, `status`, …). */
const relayError = (c: Context, e: Error): ErrorReport => describeError(explainNetworkError(e, c.v.ca));

/** A warning per failed relay: `zax: warning: URL: …`, or `{"warning":{"message","url","kind",…}}`. */
function warnFailures(c: Context, failures: readonly RelayFailure[], what: string): void {
  for (const f of failures) {
    const { message, ...rest } = relayError(c, f.error);
    c.out.warn(`${what} failed on ${f.url}: ${message}`, { url: f.url, ...rest });
  }
}

/** Per-relay outcomes for JSON: `{url, <field>: value}` or `{url, error: {message, kind, …}}`. */
function relayOutcomes<T>(c: Context, results: readonly ({ url: string; value: T } | RelayFailure)[], field: string): Record<string, unknown>[] {
  return results.map((r) => (isRelayFailure(r) ? { url: r.url, error: relayError(c, r.error) } : { url: r.url, [field]: r.value }));
}

// ---------- the commands ----------

async function keygen(c: Context): Promise<number> {
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

async function showId(c: Context): Promise<number> {
  noPositionals(c);
  const id = await loadIdentity(c);
  c.out.result(describeIdentity(id), { ...identityJson(id), path: identityPath(c) });
  return EXIT_OK;
}

async function send(c: Context): Promise<number> {
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

/** What inbox, watch, files and receive-file read: every contact and --from sender as a guest. */
interface Reader {
  /** The single relay's mailbox; null with several relays. */
  mailbox: Mailbox | null;
  multi: MultiMailbox | null;
  /** Messages (once each, across relays); relay failures are handed to `onFailures` (default: a warning each). */
  receive: () => Promise<ReceivedMessage[]>;
  /** Deletes messages on the relay(s), warning about relays that fail. */
  remove: (nonces: readonly string[]) => Promise<void>;
}

async function openReader(
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

async function inbox(c: Context): Promise<number> {
  const { receive } = await openReader(c);
  const messages = await receive();
  c.out.result(formatInbox(messages), messages.map(toJson));
  return EXIT_OK;
}

async function deleteCommand(c: Context): Promise<number> {
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

async function status(c: Context): Promise<number> {
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

// ---------- files ----------

/** A whole number of bytes from an option, in [min, max]. */
function bytesOption(c: Context, flag: string, value: string, min: number, max: number): number {
  const n = /^\d{1,12}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw usage(c, `${flag}: expected a whole number of bytes from ${min} to ${max}, got "${value}"`);
  return n;
}

/** An argument quoted for a POSIX shell when it needs it. */
const shellQuote = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

const errnoCode = (e: unknown): string => {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
};

/** Writes bytes to the CLI's stdout, waiting for 'drain' when it says to. */
async function writeStdout(c: Context, chunk: Uint8Array): Promise<void> {
  const out = c.io.stdout;
  if (out.write(chunk) === false && out.once !== undefined) await new Promise<void>((res) => out.once!('drain', res));
}

/** Stops on SIGINT/SIGTERM: the signal to pass on, and the disposal of the handler. */
function interruptible(c: Context): { signal: AbortSignal; dispose: () => void } {
  const stop = new AbortController();
  const dispose = c.io.onInterrupt?.(() => stop.abort()) ?? (() => undefined);
  return { signal: stop.signal, dispose };
}

async function sendFileCommand(c: Context): Promise<number> {
  const { v } = c;
  if (v.to === undefined) throw usage(c, '--to WHO is required (a contact name or a public key)');
  const to = resolvePeer(c, await loadContacts(contactsPath(c)), v.to, '--to');
  if (c.positionals.length !== 1) throw usage(c, c.positionals.length === 0 ? 'FILE is required' : 'give one FILE');
  const r = relays(c);
  if (r.multi && v.resume) throw usage(c, '--resume works with one relay: an upload through several relays is not resumed (send the file again)');
  const relay = r.urls[0]!;
  if (v.resume && (v.name !== undefined || v['chunk-size'] !== undefined)) {
    throw usage(c, '--resume keeps the name and chunk size the upload started with: leave out --name and --chunk-size');
  }
  if (v.name !== undefined && v.name.trim() === '') throw usage(c, '--name: the name is empty');
  const chunkSize = v['chunk-size'] === undefined ? undefined : bytesOption(c, '--chunk-size', v['chunk-size'], 1, 64 * 1024 * 1024);
  const given = c.positionals[0]!;
  let file: string;
  let size: number;
  let mtimeMs: number;
  try {
    file = await realpath(resolve(given));
    const st = await stat(file);
    if (!st.isFile()) throw new ZaxClientError(`${given} is not a regular file`);
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch (e) {
    if (e instanceof ZaxClientError) throw e;
    throw new ZaxClientError(`cannot read ${given} (${errnoCode(e)})`);
  }

  const { signal, dispose } = interruptible(c);
  try {
    if (r.multi) return await sendFileMulti(c, r, to, { file, size, name: v.name ?? basenameOf(file), chunkSize, signal });
    const mailbox = await openMailbox(c, relay, { signal });
    const dir = uploadsDirFor(identityPath(c));
    const mine = (await listUploadStates(dir)).filter(({ state }) => state.file === file && state.recipient === to.publicKeyB64 && state.checkpoint.from === mailbox.hpk);
    const who = to.contact ?? to.publicKeyB64;
    let resume: UploadState | undefined;
    let statePath: string | null = null;
    if (v.resume) {
      if (mine.length === 0) throw new ZaxClientError(`no interrupted upload of ${file} to ${who} to resume (checkpoints are kept in ${dir}): send it without --resume`);
      const found = mine.find(({ state }) => state.relay === relay);
      if (found === undefined) throw usage(c, `the interrupted upload of ${file} to ${who} went through ${mine[0]!.state.relay}: resume it with --relay ${mine[0]!.state.relay}`);
      if (found.state.size !== size || found.state.mtimeMs !== mtimeMs) {
        throw new ZaxClientError(`${file} has changed since its upload started (size or modification time): send it again without --resume`);
      }
      resume = found.state;
      statePath = found.path;
    } else if (mine.length > 0) {
      c.out.warn(`an interrupted upload of this file to ${who} can be continued with --resume; this starts a new upload`);
    }

    const resumeCommand = [
      'zax send-file --resume',
      `--relay ${shellQuote(relay)}`,
      `--to ${shellQuote(v.to)}`,
      ...(v.id !== undefined ? [`--id ${shellQuote(v.id)}`] : []),
      ...(v.ca !== undefined ? [`--ca ${shellQuote(v.ca)}`] : []),
      shellQuote(given),
    ].join(' ');
    const startOffset = resume === undefined ? 0 : Math.min(size, resume.checkpoint.nextPart * resume.checkpoint.chunkSize);
    let current: FileUploadCheckpoint | null = resume?.checkpoint ?? null;
    let saveFailed = false;
    const onCheckpoint = (cp: FileUploadCheckpoint): void => {
      current = cp;
      try {
        statePath = saveUploadState(dir, { type: 'zax-upload', version: 1, file, size, mtimeMs, relay, recipient: to.publicKeyB64, checkpoint: cp });
      } catch (e) {
        if (!saveFailed) c.out.warn(`cannot write the upload checkpoint in ${dir} (${errnoCode(e)}): if interrupted, this upload cannot be resumed`);
        saveFailed = true;
      }
    };
    const progress = createProgress({ stream: c.io.stderr, direction: 'send', json: c.out.json });
    const source = createReadStream(file, { start: startOffset, highWaterMark: 256 * 1024 });
    let sent: SentFile;
    try {
      sent = await mailbox.sendFile(to.publicKey, source, {
        size,
        name: v.name ?? basenameOf(file),
        ...(chunkSize !== undefined ? { chunkSize } : {}),
        signal,
        onProgress: (p) => progress.update(p),
        onCheckpoint,
        ...(resume !== undefined ? { resume: resume.checkpoint, sourceOffset: startOffset } : {}),
      });
    } catch (e) {
      progress.fail();
      source.destroy();
      const cp = current as FileUploadCheckpoint | null;
      const done = cp === null ? 0 : Math.min(size, cp.nextPart * cp.chunkSize);
      if (signal.aborted) {
        if (cp === null || statePath === null) throw new Interrupted('upload interrupted before it started: nothing to resume');
        throw new Interrupted(`upload interrupted: ${formatBytes(done)} of ${formatBytes(size)} acknowledged by the relay. To continue it: ${resumeCommand}`, resumeCommand);
      }
      if (e instanceof FileTransferError && e.code === 'not-found' && statePath !== null) {
        await removeUploadState(statePath);
        throw new ZaxClientError(`${e.message}; its checkpoint is removed: send the file again without --resume`);
      }
      if (cp !== null && statePath !== null) {
        c.out.warn(`the upload stopped after ${formatBytes(done)} of ${formatBytes(size)}; to continue it: ${resumeCommand}`, { resume: resumeCommand });
      }
      throw e;
    }
    progress.done();
    // Delivered: this checkpoint, and those of earlier attempts at the same file for the same recipient, are done with.
    for (const p of new Set([...(statePath !== null ? [statePath] : []), ...mine.map((m) => m.path)])) await removeUploadState(p);
    c.out.result(`uploadID: ${sent.uploadID}\nnonce:    ${sent.nonce}\ntoken:    ${sent.token}\n`, {
      uploadID: sent.uploadID,
      nonce: sent.nonce,
      token: sent.token,
      to: sent.to,
      publicKey: to.publicKeyB64,
      contact: to.contact,
      name: sent.name,
      size: sent.size,
      chunks: sent.chunks,
      resumedFrom: startOffset,
    });
    return EXIT_OK;
  } finally {
    dispose();
  }
}

/** send-file through several relays (MultiMailbox.sendFile): no checkpoint, an interrupted send starts again. */
async function sendFileMulti(c: Context, r: Relays, to: Peer, f: { file: string; size: number; name: string; chunkSize: number | undefined; signal: AbortSignal }): Promise<number> {
  const multi = await openMulti(c, r, { signal: f.signal });
  const progress = createProgress({ stream: c.io.stderr, direction: 'send', json: c.out.json });
  const source = createReadStream(f.file, { highWaterMark: 256 * 1024 });
  let sent;
  try {
    sent = await multi.sendFile(to.publicKey, source, {
      size: f.size,
      name: f.name,
      ...(f.chunkSize !== undefined ? { chunkSize: f.chunkSize } : {}),
      signal: f.signal,
      onProgress: (p) => progress.update(p),
    });
  } catch (e) {
    progress.fail();
    source.destroy();
    if (f.signal.aborted) throw new Interrupted('upload interrupted (uploads through several relays are not resumed: send the file again)');
    throw e;
  }
  progress.done();
  warnFailures(c, sent.failures, 'sendFile');
  const ok = sent.relays.filter((o): o is { url: string; uploadID: string; token: string } => !isRelayFailure(o));
  const first = ok[0]!;
  const outcomes = sent.relays.map((o) =>
    isRelayFailure(o) ? { url: o.url, error: relayError(c, o.error), ...(o.uploadID !== undefined ? { uploadID: o.uploadID } : {}) } : { url: o.url, uploadID: o.uploadID, token: o.token },
  );
  c.out.result(`${ok.map((o) => `uploadID: ${o.uploadID}  (${o.url})\n`).join('')}nonce:    ${sent.nonce}\ntoken:    ${first.token}\n`, {
    uploadID: first.uploadID,
    nonce: sent.nonce,
    token: first.token,
    to: sent.to,
    publicKey: to.publicKeyB64,
    contact: to.contact,
    name: sent.name,
    size: sent.size,
    chunks: sent.chunks,
    resumedFrom: 0,
    relays: outcomes,
  });
  return EXIT_OK;
}

const basenameOf = (path: string): string => path.split(/[/\\]/).pop() || 'file';

/** Runs `f` over `items`, at most `limit` at a time, keeping the order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function fileJson(m: ReceivedMessage, st: FileStatusLike | null): Record<string, unknown> {
  return {
    uploadID: m.uploadID ?? null,
    nonce: m.nonce,
    time: m.time,
    name: m.file?.name ?? null,
    size: m.file?.orig_size ?? null,
    sender: m.sender === null ? null : m.sender.publicKeyB64,
    contact: m.sender?.name ?? null,
    from: m.from,
    status: st?.status ?? null,
    bytesStored: st?.bytes_stored ?? null,
    ...('uploads' in m ? { uploads: (m as MultiReceivedMessage).uploads } : {}),
  };
}

interface FileStatusLike {
  status: string;
  bytes_stored: number;
}

function formatFiles(files: readonly ReceivedMessage[], statuses: readonly (FileStatusLike | null)[]): string {
  if (files.length === 0) return 'no files\n';
  const head = `${files.length} file${files.length === 1 ? '' : 's'}\n`;
  return (
    head +
    files
      .map((m, i) => {
        const st = statuses[i];
        const who = m.sender === null ? `from hpk ${m.from} (unknown sender)` : m.sender.name !== undefined ? `from ${m.sender.name} (${m.sender.publicKeyB64})` : `from ${m.sender.publicKeyB64}`;
        const what = m.file !== undefined ? `${sanitizeForTerminal(m.file.name).replace(/\n/g, '\\n')}  ${formatBytes(m.file.orig_size)}` : '(name and size not readable)';
        return `\n${what}  ${st?.status ?? 'status unknown'}  ${who}\n  uploadID ${m.uploadID ?? '?'}  nonce ${m.nonce}\n`;
      })
      .join('')
  );
}

async function filesCommand(c: Context): Promise<number> {
  const reader = await openReader(c);
  const files = (await reader.receive()).filter((m) => m.kind === 'file');
  const { mailbox, multi } = reader;
  // One fileStatus per file (with several relays: per relay that holds it, the best one), a few at
  // a time; a failure leaves that status unknown.
  const statusOf = async (m: ReceivedMessage): Promise<FileStatusLike | null> => {
    if (multi !== null) {
      const uploads = (m as MultiReceivedMessage).uploads;
      if (uploads === undefined) return null;
      const res = await multi.fileStatus({ uploads }).catch(() => null);
      const got = (res?.relays ?? []).flatMap((o) => (isRelayFailure(o) ? [] : [o.status]));
      return got.find((st) => st.status === 'COMPLETE') ?? got[0] ?? null;
    }
    return m.uploadID === undefined ? null : mailbox!.fileStatus(m.uploadID).catch(() => null);
  };
  const statuses = await mapLimit(files, 8, statusOf);
  c.out.result(formatFiles(files, statuses), files.map((m, i) => fileJson(m, statuses[i] ?? null)));
  return EXIT_OK;
}

async function receiveFileCommand(c: Context): Promise<number> {
  const { v } = c;
  if (c.positionals.length !== 1) throw usage(c, 'give the UPLOAD_ID or the NONCE of one file ("zax files" lists them)');
  const id = c.positionals[0]!;
  if (v.out === '-' && c.out.json) throw usage(c, '--json cannot go with --out -: standard output holds the file');
  if (v.out === '') throw usage(c, '--out: the path is empty');
  const { signal, dispose } = interruptible(c);
  try {
    const reader = await openReader(c, { positionals: true, signal });
    const { mailbox, multi } = reader;
    const m = (await reader.receive()).find(
      (f) => f.kind === 'file' && (f.uploadID === id || f.nonce === id || ((f as MultiReceivedMessage).uploads ?? []).some((u) => u.uploadID === id)),
    );
    if (m === undefined) throw new ZaxClientError(`no file with uploadID or nonce "${id}" in your mailbox (see "zax files")`);
    if (m.file === undefined || m.uploadID === undefined) {
      throw new ZaxClientError(
        m.sender === null
          ? `the file is from an unknown sender (hpk ${m.from}): add them with "zax contacts add NAME PUBKEY", or give --from PUBKEY`
          : `the file message from ${m.sender.name ?? m.sender.publicKeyB64} does not open (not file metadata for this key)`,
      );
    }
    const metadata: FileMetadata = m.file;
    const name = safeFileName(metadata.name);
    let dest: string | null = null;
    if (v.out !== '-') {
      const out = resolve(v.out ?? '.');
      const isDir = await stat(out).then((s) => s.isDirectory(), () => false);
      dest = isDir ? join(out, name) : out;
      const exists = await lstat(dest).then(() => true, () => false);
      if (exists && v.force !== true) throw new ZaxClientError(`${dest} already exists: use --force to replace it, or --out another path`);
    }
    let pending: PendingFile | null = null;
    if (dest !== null) {
      try {
        pending = await pendingFile(dest);
      } catch (e) {
        throw new ZaxClientError(`cannot write beside ${dest} (${errnoCode(e)})`);
      }
    }
    const hash = createHash('sha256');
    const progress = createProgress({ stream: c.io.stderr, direction: 'receive', json: c.out.json });
    try {
      const options = {
        sink: async (chunk: Uint8Array): Promise<void> => {
          hash.update(chunk);
          if (pending !== null) await pending.write(chunk);
          else await writeStdout(c, chunk);
        },
        signal,
        onProgress: (p: TransferProgress) => progress.update(p),
      };
      if (multi !== null) {
        // One relay delivers it; the ones tried before it failed.
        const got = await multi.receiveFile(m as MultiReceivedMessage, options);
        warnFailures(c, got.failures, 'download');
      } else {
        await mailbox!.receiveFile(m, options);
      }
      await pending?.commit(v.force === true);
    } catch (e) {
      progress.fail();
      await pending?.discard();
      if (signal.aborted) throw new Interrupted(`download interrupted${pending !== null ? '; the partial file is removed' : ''}`);
      if (errnoCode(e) === 'EEXIST') throw new ZaxClientError(`${dest} appeared during the download: use --force to replace it, or --out another path`);
      throw e;
    }
    progress.done();
    let deleted = false;
    if (v.delete) {
      if (multi !== null) warnFailures(c, (await multi.deleteFile(m as MultiReceivedMessage)).failures, 'deleteFile');
      else await mailbox!.deleteFile(m.uploadID);
      await reader.remove([m.nonce]);
      deleted = true;
    }
    const doc = { uploadID: m.uploadID, nonce: m.nonce, name: metadata.name, path: dest, size: metadata.orig_size, sha256: hash.digest('hex'), deleted };
    if (dest === null) c.out.note(`received ${formatBytes(metadata.orig_size)}${deleted ? ' (deleted from the relay)' : ''}\n`);
    else c.out.result(`${dest}\n`, doc);
    return EXIT_OK;
  } finally {
    dispose();
  }
}

const contactJson = (k: Contact): Record<string, string> => ({ name: k.name, publicKey: k.publicKey, hpk: contactHpk(k) });

async function contacts(c: Context): Promise<number> {
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
      const list = await loadContacts(path);
      const old = list.find((k) => k.name === name);
      if (old !== undefined && c.v.force !== true) {
        throw new ContactsError(`a contact named "${name}" already exists (${old.publicKey}); use --force to replace it`);
      }
      const added: Contact = { name, publicKey };
      await saveContacts(path, [...list.filter((k) => k.name !== name), added]);
      const text = old === undefined ? `added ${name} (${publicKey})\n` : `replaced ${name} (was ${old.publicKey}, now ${publicKey})\n`;
      c.out.result(text, contactJson(added));
      const twin = list.find((k) => k.publicKey === publicKey && k.name !== name);
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
      const list = await loadContacts(path);
      const gone = list.find((k) => k.name === name);
      if (gone === undefined) throw usage(c, `no contact named "${name}" (see "zax contacts list")`);
      await saveContacts(path, list.filter((k) => k.name !== name));
      c.out.result(`removed ${name} (${gone.publicKey})\n`, contactJson(gone));
      return EXIT_OK;
    }
    case undefined:
      throw usage(c, 'give a subcommand: add, list or remove');
    default:
      throw usage(c, `unknown subcommand "${sub}" of zax contacts (add, list or remove)`);
  }
}

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

async function watchCommand(c: Context): Promise<number> {
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

/**
 * The relay URLs (every --relay, else the comma-separated $ZAX_RELAY), normalised and without
 * repeats, checked before the identity is read (a mistyped URL is a usage error).
 */
function relayUrls(c: Context): string[] {
  const given = c.v.relay !== undefined && c.v.relay.length > 0 ? c.v.relay : c.io.env.ZAX_RELAY ? [c.io.env.ZAX_RELAY] : [];
  const raw = given.flatMap((u) => u.split(',')).map((u) => u.trim()).filter((u) => u !== '');
  if (raw.length === 0) throw usage(c, '--relay URL is required (or set ZAX_RELAY)');
  const urls: string[] = [];
  for (const u of raw) {
    let url: string;
    try {
      url = normalizeBaseUrl(u);
    } catch (e) {
      throw usage(c, e instanceof Error ? e.message : String(e));
    }
    if (!urls.includes(url)) urls.push(url);
  }
  return urls;
}

/** The relays and K of a command that can use several: `multi` when more than one URL is given. */
interface Relays {
  urls: string[];
  copies: number;
  multi: boolean;
}

function relays(c: Context): Relays {
  const urls = relayUrls(c);
  let copies = Math.min(2, urls.length);
  if (c.v.copies !== undefined) {
    const k = /^\d{1,3}$/.test(c.v.copies) ? Number(c.v.copies) : NaN;
    if (!(k >= 1 && k <= urls.length)) throw usage(c, `--copies: expected a whole number from 1 to the number of relays (${urls.length}), got "${c.v.copies}"`);
    copies = k;
  }
  return { urls, copies, multi: urls.length > 1 };
}

async function loadIdentity(c: Context): Promise<Identity> {
  const path = identityPath(c);
  const id = await loadIdentityFile(path);
  try {
    if (await isIdentityFileExposed(path)) c.out.warn(`${path} is readable by other users (chmod 600 it)`);
  } catch {
    // stat failing right after a successful read is not worth failing the command
  }
  return id;
}

function describeIdentity(id: Identity): string {
  return `public key: ${b64(id.publicKey)}\nhpk:        ${b64(id.hpk)}\n`;
}

const identityJson = (id: Identity): Record<string, string> => ({ publicKey: b64(id.publicKey), hpk: b64(id.hpk) });

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
    contact: m.sender?.name ?? null,
    text: m.text,
    data: m.data,
    ...(m.uploadID !== undefined ? { uploadID: m.uploadID } : {}),
    ...('relays' in m ? { relays: (m as MultiReceivedMessage).relays } : {}),
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

function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
  };
}
