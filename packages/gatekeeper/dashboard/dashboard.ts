/**
 * The relay self-test page's script (bundled for the browser by scripts/src/build-dashboard.ts).
 * It makes two fresh identities in the browser, and through this relay: handshakes both mailboxes,
 * sends an encrypted message from one to the other, receives and decrypts it, sends a small file
 * (three chunks) and receives it, and deletes both. Each
 * step shows its status (pending, running, ok, failed with the error) and latency; the relay's health
 * (/readyz, /livez) and the proof-of-work difficulty (the handshake's, and /dashboard/status.json's)
 * are shown beside them. When the run ends, `<body data-state>` is `done` or `failed`.
 *
 * Every URL is relative to the relay's base, found from this script's own address
 * (`<base>/dashboard/dashboard.js`), so the page works under a mount prefix.
 */
import { generateIdentity, Mailbox, RelayHttpError, RelaySession, type Identity } from '@zax/client/browser';

type Status = 'pending' | 'running' | 'ok' | 'failed' | 'skipped';

interface Context {
  readonly base: string;
  sender?: { session: RelaySession; mailbox: Mailbox; identity: Identity };
  recipient?: { session: RelaySession; mailbox: Mailbox; identity: Identity };
  text?: string;
  nonce?: string;
  file?: { bytes: Uint8Array; name: string; nonce: string; uploadID: string };
}

interface Step {
  readonly id: string;
  readonly title: string;
  /** Runs the step; returns the detail line shown beside it. */
  readonly run: (ctx: Context) => Promise<string>;
}

const REQUEST_TIMEOUT_MS = 10_000;

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is missing: an earlier step failed`);
  return value;
}

function mailboxFor(base: string, identity: Identity, guest?: Identity): { session: RelaySession; mailbox: Mailbox; identity: Identity } {
  const session = new RelaySession({ url: base, identity, timeoutMs: REQUEST_TIMEOUT_MS });
  const mailbox = new Mailbox(session, guest !== undefined ? { guests: [{ publicKey: guest.publicKey, name: 'sender' }] } : {});
  return { session, mailbox, identity };
}

const short = (b64: string): string => `${b64.slice(0, 8)}…`;

/** The self-test file: 40 KiB in 16 KiB chunks, so the relay stores and serves three parts. */
const FILE_BYTES = 40 * 1024;
const FILE_CHUNK = 16 * 1024;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The steps, in order. */
const STEPS: readonly Step[] = [
  {
    id: 'identities',
    title: 'Create two mailboxes',
    run: async (ctx) => {
      const sender = generateIdentity();
      const recipient = generateIdentity();
      ctx.sender = mailboxFor(ctx.base, sender);
      ctx.recipient = mailboxFor(ctx.base, recipient, sender);
      return `sender ${short(ctx.sender.mailbox.hpk)}, recipient ${short(ctx.recipient.mailbox.hpk)}`;
    },
  },
  {
    id: 'handshake',
    title: 'Handshake (both mailboxes)',
    run: async (ctx) => {
      const sender = need(ctx.sender, 'the sender');
      const recipient = need(ctx.recipient, 'the recipient');
      const t0 = performance.now();
      await sender.session.connect();
      const t1 = performance.now();
      const count = await recipient.session.connect();
      const t2 = performance.now();
      const difficulty = recipient.session.lastDifficulty;
      if (difficulty !== null) showDifficulty(difficulty, 'asked in the handshake');
      return `sender ${ms(t1 - t0)}, recipient ${ms(t2 - t1)}; recipient has ${count} message${count === 1 ? '' : 's'}`;
    },
  },
  {
    id: 'send',
    title: 'Send a message',
    run: async (ctx) => {
      const sender = need(ctx.sender, 'the sender');
      const recipient = need(ctx.recipient, 'the recipient');
      ctx.text = `self-test ${new Date().toISOString()} ✓`;
      const sent = await sender.mailbox.send(recipient.identity.publicKey, ctx.text);
      ctx.nonce = need(sent.nonce ?? undefined, 'the message nonce');
      return `encrypted, ${new TextEncoder().encode(ctx.text).length} bytes; storage token ${short(sent.token)}`;
    },
  },
  {
    id: 'receive',
    title: 'Receive and decrypt it',
    run: async (ctx) => {
      const sender = need(ctx.sender, 'the sender');
      const recipient = need(ctx.recipient, 'the recipient');
      const messages = await recipient.mailbox.receive({ from: [sender.identity.publicKey] });
      const got = messages.find((m) => m.nonce === ctx.nonce);
      if (got === undefined) throw new Error(`the message is not in the mailbox (${messages.length} other message${messages.length === 1 ? '' : 's'})`);
      if (got.status !== 'decrypted') throw new Error(`the message did not decrypt (${got.status})`);
      if (got.text !== ctx.text) throw new Error('the message decrypted to other text than was sent');
      return `decrypted, the same ${new TextEncoder().encode(got.text ?? '').length} bytes`;
    },
  },
  {
    id: 'send-file',
    title: 'Send a small file',
    run: async (ctx) => {
      const sender = need(ctx.sender, 'the sender');
      const recipient = need(ctx.recipient, 'the recipient');
      const bytes = new Uint8Array(FILE_BYTES);
      crypto.getRandomValues(bytes);
      const name = 'self-test.bin';
      const sent = await sender.mailbox.sendFile(recipient.identity.publicKey, bytes, { name, chunkSize: FILE_CHUNK });
      ctx.file = { bytes, name, nonce: sent.nonce, uploadID: sent.uploadID };
      return `${bytes.length / 1024} KiB in ${sent.chunks} encrypted chunks; upload ${short(sent.uploadID)}`;
    },
  },
  {
    id: 'receive-file',
    title: 'Receive and decrypt the file',
    run: async (ctx) => {
      const sender = need(ctx.sender, 'the sender');
      const recipient = need(ctx.recipient, 'the recipient');
      const file = need(ctx.file, 'the sent file');
      const messages = await recipient.mailbox.receive({ from: [sender.identity.publicKey] });
      const msg = messages.find((m) => m.kind === 'file' && m.nonce === file.nonce);
      if (msg === undefined) throw new Error('the file message is not in the mailbox');
      if (msg.status !== 'decrypted') throw new Error(`the file metadata did not decrypt (${msg.status})`);
      const got = await recipient.mailbox.receiveFile(msg);
      if (got.name !== file.name) throw new Error(`the file arrived named ${JSON.stringify(got.name)}`);
      if (got.bytes === undefined || !sameBytes(got.bytes, file.bytes)) throw new Error('the file decrypted to other bytes than were sent');
      return `decrypted, the same ${got.size / 1024} KiB`;
    },
  },
  {
    id: 'delete',
    title: 'Delete the message and the file',
    run: async (ctx) => {
      const recipient = need(ctx.recipient, 'the recipient');
      const file = need(ctx.file, 'the sent file');
      if (!(await recipient.mailbox.deleteFile(file.uploadID))) throw new Error('the relay no longer had the file');
      const left = await recipient.mailbox.delete([need(ctx.nonce, 'the message nonce'), file.nonce]);
      if (left !== 0) throw new Error(`${left} message${left === 1 ? '' : 's'} left after the delete`);
      return 'file deleted, mailbox empty';
    },
  },
];

// ---------- page ----------

/** This script's own URL: read while the script runs (null in callbacks). */
const SCRIPT_URL = (document.currentScript as HTMLScriptElement | null)?.src ?? location.href;
/** `<base>/dashboard/dashboard.js` → `<base>/` */
const BASE = new URL('../', SCRIPT_URL).href;

const ms = (x: number): string => `${Math.max(0, Math.round(x))} ms`;

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e;
}

function cell(row: HTMLTableRowElement, className: string, text = ''): HTMLTableCellElement {
  const td = row.insertCell();
  td.className = className;
  td.textContent = text;
  return td;
}

interface Row {
  readonly row: HTMLTableRowElement;
  readonly status: HTMLElement;
  readonly latency: HTMLTableCellElement;
  readonly detail: HTMLTableCellElement;
}

function renderSteps(): Map<string, Row> {
  const body = el('steps') as HTMLTableSectionElement;
  body.replaceChildren();
  const rows = new Map<string, Row>();
  for (const step of STEPS) {
    const row = body.insertRow();
    row.dataset.step = step.id;
    const name = row.insertCell();
    name.className = 'name';
    name.textContent = step.title;
    const statusCell = cell(row, 'status');
    const status = document.createElement('span');
    status.className = 'badge';
    statusCell.append(status);
    const latency = cell(row, 'num latency');
    const detail = cell(row, 'detail');
    rows.set(step.id, { row, status, latency, detail });
    setStatus(rows.get(step.id)!, 'pending');
  }
  return rows;
}

function setStatus(r: Row, status: Status, latencyMs?: number, detail?: string): void {
  r.row.dataset.status = status;
  r.status.textContent = status;
  if (latencyMs !== undefined) {
    r.latency.textContent = ms(latencyMs);
    r.row.dataset.latencyMs = String(Math.round(latencyMs));
  } else {
    r.latency.textContent = status === 'running' ? '…' : '';
  }
  if (detail !== undefined) r.detail.textContent = detail;
}

function showDifficulty(difficulty: number, source: string): void {
  const d = el('difficulty');
  d.dataset.status = 'ok';
  d.dataset.value = String(difficulty);
  d.textContent = `${difficulty} (${source})`;
}

function describe(err: unknown): string {
  if (err instanceof RelayHttpError) return err.message;
  if (err instanceof Error) return `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`;
  return String(err);
}

async function fetchText(path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(new URL(path, BASE), { cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return { status: res.status, text: (await res.text()).trim() };
}

/** /readyz (edge store reachable) and /livez. */
async function checkHealth(): Promise<boolean> {
  const h = el('health');
  h.dataset.status = 'running';
  h.textContent = 'checking…';
  try {
    const t0 = performance.now();
    const [ready, live] = await Promise.all([fetchText('readyz'), fetchText('livez')]);
    const took = ms(performance.now() - t0);
    const ok = ready.status === 200 && live.status === 200;
    h.dataset.status = ok ? 'ok' : 'failed';
    h.textContent = ok ? `ready (/readyz, /livez: ${took})` : `not ready: /readyz ${ready.status}, /livez ${live.status}`;
    return ok;
  } catch (err) {
    h.dataset.status = 'failed';
    h.textContent = `unreachable: ${describe(err)}`;
    return false;
  }
}

/** The difficulty the relay announces now, before any handshake. */
async function checkDifficulty(): Promise<void> {
  try {
    const { status, text } = await fetchText('dashboard/status.json');
    if (status !== 200) return;
    const s = JSON.parse(text) as { difficulty?: unknown; adaptiveDifficulty?: unknown };
    if (typeof s.difficulty === 'number' && el('difficulty').dataset.status !== 'ok') {
      showDifficulty(s.difficulty, s.adaptiveDifficulty === true ? 'adaptive, announced now' : 'static, announced now');
    }
  } catch {
    // The handshake reports the difficulty too.
  }
}

let running = false;

async function runAll(): Promise<void> {
  if (running) return;
  running = true;
  const button = el('run') as HTMLButtonElement;
  button.disabled = true;
  document.body.dataset.state = 'running';
  const summary = el('summary');
  summary.dataset.status = 'running';
  summary.textContent = 'Running…';
  const difficulty = el('difficulty');
  difficulty.dataset.status = 'pending';
  delete difficulty.dataset.value;
  difficulty.textContent = '…';

  const rows = renderSteps();
  const [healthy] = await Promise.all([checkHealth(), checkDifficulty()]);
  const ctx: Context = { base: BASE };
  let failed: { step: Step; message: string } | null = null;
  let total = 0;
  for (const step of STEPS) {
    const r = rows.get(step.id)!;
    if (failed !== null) {
      setStatus(r, 'skipped', undefined, `not run: “${failed.step.title}” failed`);
      continue;
    }
    setStatus(r, 'running');
    const t0 = performance.now();
    try {
      const detail = await step.run(ctx);
      const took = performance.now() - t0;
      total += took;
      setStatus(r, 'ok', took, detail);
    } catch (err) {
      const message = describe(err);
      setStatus(r, 'failed', performance.now() - t0, message);
      failed = { step, message };
    }
  }

  const ok = failed === null && healthy;
  summary.dataset.status = ok ? 'ok' : 'failed';
  summary.textContent = ok
    ? `All ${STEPS.length} steps passed in ${ms(total)}.`
    : failed !== null
      ? `Failed at “${failed.step.title}”: ${failed.message}`
      : `Every step passed in ${ms(total)}, but the relay does not report itself healthy.`;
  document.body.dataset.state = ok ? 'done' : 'failed';
  button.disabled = false;
  running = false;
}

el('relay-url').textContent = BASE.replace(/\/$/, '');
el('run').addEventListener('click', () => void runAll());
void runAll();
