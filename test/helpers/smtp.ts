/** A real SMTP server on loopback (the `smtp-server` package) that keeps what it receives, parsed. */
import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Captured {
  messageId: string;
  to: string[];
  subject: string;
  headers: Map<string, unknown>;
  text: string;
  html: string;
  raw: ParsedMail;
  /** A header's raw value by name (mailparser folds List-* headers into one structured `list`). */
  header(name: string): string | undefined;
}

export interface SmtpCapture {
  url: string;
  port: number;
  messages: Captured[];
  /** Recipients the server refuses with 550 (a hard bounce). */
  refuse: Set<string>;
  /** While true, every transaction is answered 421 (service unavailable). */
  down: boolean;
  /** How long the server takes to accept a message (ms), to widen the window a crash can hit. */
  delayMs: number;
  waitFor(predicate: (m: Captured[]) => boolean, timeoutMs?: number): Promise<Captured[]>;
  close(): Promise<void>;
}

/** Resolves with `messages` once `predicate` holds for them; fails after `timeoutMs`, listing what arrived. */
export async function waitForMail(
  messages: Captured[],
  predicate: (m: Captured[]) => boolean,
  timeoutMs = 20_000,
): Promise<Captured[]> {
  const until = Date.now() + timeoutMs;
  while (!predicate(messages)) {
    if (Date.now() > until)
      throw new Error(
        `timed out waiting for mail; have ${messages.length}: ${messages.map((m) => m.subject).join(' | ')}`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
  return messages;
}

/** A parsed message as a capture keeps it, with the envelope's recipients. */
export function captured(mail: ParsedMail, to: string[]): Captured {
  return {
    messageId: mail.messageId ?? '',
    to,
    subject: mail.subject ?? '',
    headers: mail.headers,
    text: mail.text ?? '',
    html: typeof mail.html === 'string' ? mail.html : '',
    raw: mail,
    header: (name) => mail.headerLines.find((l) => l.key === name.toLowerCase())?.line.replace(/^[^:]*:\s*/, ''),
  };
}

export async function startSmtp(port = 0): Promise<SmtpCapture> {
  const capture: SmtpCapture = {
    url: '',
    port: 0,
    messages: [],
    refuse: new Set(),
    down: false,
    delayMs: 0,
    waitFor: (predicate, timeoutMs) => waitForMail(capture.messages, predicate, timeoutMs),
    close: () => new Promise((r) => server.close(() => r())),
  };
  const closed = new Set<string>();
  const server = new SMTPServer({
    onClose(session) {
      closed.add(session.id);
    },
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onMailFrom(_a, _s, cb) {
      if (capture.down) {
        const err = Object.assign(new Error('service temporarily unavailable'), { responseCode: 421 });
        return cb(err);
      }
      cb();
    },
    onRcptTo(address, _s, cb) {
      if (capture.refuse.has(address.address)) {
        return cb(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }));
      }
      cb();
    },
    onData(stream, session, cb) {
      simpleParser(stream).then(async (mail) => {
        if (capture.delayMs) await new Promise((r) => setTimeout(r, capture.delayMs));
        // Kept only as it is acknowledged: a client gone before the 250 gets nothing delivered.
        if (closed.has(session.id)) return cb(new Error('client went away'));
        capture.messages.push(
          captured(
            mail,
            session.envelope.rcptTo.map((r) => r.address),
          ),
        );
        cb();
      }, cb);
    },
  });
  // A client killed mid-transaction (the crash tests) resets its connection: not a server failure.
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') console.error('smtp capture:', err);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  capture.port = (server.server.address() as AddressInfo).port;
  capture.url = `smtp://127.0.0.1:${capture.port}`;
  return capture;
}
