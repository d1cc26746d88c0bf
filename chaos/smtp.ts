/**
 * The chaos and fuzz suites' SMTP server: a real `smtp-server` on loopback that records every
 * message it acknowledges (Message-ID, recipients, the lead headers), duplicates included, and can
 * be stopped and started again on the same port (the "SMTP down" fault: connections are refused).
 */
import { simpleParser } from 'mailparser';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Received {
  messageId: string;
  to: string[];
  leadId?: string;
  handoff: boolean;
  track?: string;
  step?: string;
  at: number;
}

export interface RecordingSmtp {
  url: string;
  port: number;
  received: Received[];
  readonly up: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRecordingSmtp(): Promise<RecordingSmtp> {
  let server: SMTPServer | undefined;
  const rec: RecordingSmtp = {
    url: '',
    port: 0,
    received: [],
    get up() {
      return server !== undefined;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      // close() waits for open connections; a pooled client keeps them, so cut them after a moment.
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          for (const c of (s as unknown as { connections: Set<{ close(): void }> }).connections ?? []) c.close();
        }, 500);
        s.close(() => {
          clearTimeout(t);
          r();
        });
      });
    },
    async start() {
      if (server) return;
      const s = build(rec);
      await new Promise<void>((resolve, reject) => {
        s.server.once('error', reject);
        s.listen(rec.port, '127.0.0.1', () => resolve());
      });
      server = s;
      rec.port = (s.server.address() as AddressInfo).port;
      rec.url = `smtp://127.0.0.1:${rec.port}`;
    },
  };
  await rec.start();
  return rec;
}

function build(rec: RecordingSmtp): SMTPServer {
  const s = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, cb) {
      simpleParser(stream).then((mail) => {
        const h = (name: string) => mail.headerLines.find((l) => l.key === name)?.line.replace(/^[^:]*:\s*/, '');
        rec.received.push({
          messageId: mail.messageId ?? '',
          to: session.envelope.rcptTo.map((r) => r.address),
          leadId: h('x-lead-id'),
          handoff: h('x-lead-handoff') === '1',
          track: h('x-nurture-track'),
          step: h('x-nurture-step'),
          at: Date.now(),
        });
        cb();
      }, cb);
    },
  });
  // Clients killed mid-transaction (worker SIGKILLs) reset their connections: not a server failure.
  s.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') console.error('[chaos smtp]', err.message);
  });
  return s;
}
