/**
 * The local stack's SMTP capture (`npm start`): accepts every message on loopback and writes it,
 * raw as received (RFC 5322, CRLF), to `<dir>/<timestamp>-<safe message id>.eml`, which any mail
 * client opens. Nothing is relayed. Files appear complete (written aside, then renamed), and a
 * message is acknowledged only once its file is on disk, so a failed write makes the sender retry.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

export interface OutboxOptions {
  dir: string;
  port?: number;
  host?: string;
  /** One line per saved message (default: none). */
  log?: (line: string) => void;
  /** Largest message accepted, in bytes (default 25 MB). */
  maxBytes?: number;
}

export interface Outbox {
  url: string;
  port: number;
  dir: string;
  close(): Promise<void>;
}

/** The Message-ID (without angle brackets) and the recipients from a raw message's header block. */
export function headerSummary(raw: Buffer): { messageId?: string; to?: string } {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw
    .subarray(0, end < 0 ? Math.min(raw.length, 64 * 1024) : end)
    .toString('latin1')
    .replace(/\r?\n[ \t]+/g, ' ');
  const field = (name: string) => head.match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'im'))?.[1]?.trim();
  return { messageId: field('Message-ID')?.replace(/^<|>$/g, ''), to: field('To') };
}

/** `2025-01-31T09-05-00-123Z-<message id with anything but [A-Za-z0-9._@+-] as _>.eml` */
export function outboxFileName(at: Date, messageId: string | undefined): string {
  const stamp = at.toISOString().replace(/[:.]/g, '-');
  const safe =
    (messageId || randomUUID())
      .replace(/[^A-Za-z0-9._@+-]/g, '_')
      .replace(/^\.+/, '')
      .slice(0, 120) || 'message';
  return `${stamp}-${safe}.eml`;
}

export async function startOutbox(o: OutboxOptions): Promise<Outbox> {
  const host = o.host ?? '127.0.0.1';
  mkdirSync(o.dir, { recursive: true });
  const server = new SMTPServer({
    logger: false,
    closeTimeout: 5_000,
    disabledCommands: ['STARTTLS'],
    // Any credentials are fine: this is a capture, and a client configured with a user still works.
    authOptional: true,
    allowInsecureAuth: true,
    onAuth: (auth, _session, cb) => cb(null, { user: auth.username ?? 'anyone' }),
    size: o.maxBytes ?? 25 * 1024 * 1024,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', cb);
      stream.on('end', () => {
        if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
          return cb(Object.assign(new Error('message too large'), { responseCode: 552 }));
        }
        const raw = Buffer.concat(chunks);
        const { messageId, to } = headerSummary(raw);
        save(o.dir, raw, messageId).then(
          (file) => {
            const rcpt = session.envelope.rcptTo.map((r) => r.address).join(', ') || to || '?';
            o.log?.(`${rcpt} <${messageId ?? 'no Message-ID'}> -> ${file}`);
            cb();
          },
          (err: unknown) =>
            cb(Object.assign(new Error(`could not save the message: ${String(err)}`), { responseCode: 451 })),
        );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(o.port ?? 2525, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://${host}:${port}`,
    port,
    dir: o.dir,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function save(dir: string, raw: Buffer, messageId: string | undefined): Promise<string> {
  const tmp = join(dir, `.${randomUUID()}.tmp`);
  await writeFile(tmp, raw);
  const base = outboxFileName(new Date(), messageId).slice(0, -'.eml'.length);
  let name = `${base}.eml`;
  for (let n = 2; existsSync(join(dir, name)); n++) name = `${base}-${n}.eml`;
  await rename(tmp, join(dir, name));
  return name;
}
