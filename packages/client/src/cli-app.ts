/**
 * The `zax` command line: argument parsing, help texts, error reports and exit codes (0 success,
 * 1 error, 2 usage, 130 interrupted). Each command is a row of `COMMANDS` (summary, help, options,
 * run); the run functions are in cli-messages.ts and cli-file-commands.ts, the helpers they share
 * in cli-context.ts. `--json` makes every command print one JSON document (watch: NDJSON) and
 * report errors as one JSON line on stderr. `runCli` takes its streams, environment and fetch as
 * parameters, so tests run it in process; `cli.ts` is the executable that calls it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Output, type CliIo, type Context, type Values } from './cli-context.js';
import { CliUsage, describeError, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, explainNetworkError } from './cli-errors.js';
import { filesCommand, receiveFileCommand, sendFileCommand } from './cli-file-commands.js';
import { contacts, deleteCommand, inbox, keygen, send, showId, status, watchCommand } from './cli-messages.js';

export { sanitizeForTerminal, type CliIo } from './cli-context.js';
export { EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, type ErrorReport } from './cli-errors.js';

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

// ---------- commands ----------

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
