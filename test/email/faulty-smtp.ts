/**
 * A real SMTP server on loopback (the `smtp-server` package) whose faults a test picks per
 * transaction, at the points of an SMTP exchange that decide whether a send is a clean failure or
 * uncertain: a recipient refused (before DATA), a reply that never comes, a message taken and the
 * connection dropped before the 250.
 */
import { simpleParser } from 'mailparser';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { type Captured, captured, type SmtpCapture, waitForMail } from '../helpers/smtp.js';

/** What the server does with a whole message (after the client's terminator). */
export type DataFault =
  /** Answer 250: delivered. */
  | 'accept'
  /** Keep the message (it will be delivered) but drop the connection before the 250. */
  | 'take-and-drop'
  /** Never answer; the message is delivered only if the client waits for the 250, which it cannot (it is killed). */
  | 'hold';

export interface FaultySmtp extends SmtpCapture {
  /** Per recipient and how many transactions it was in so far (1 = the first): a 4xx/5xx to refuse RCPT TO with, or 'hold' to never answer it. */
  rcptFault: (rcpt: string, nth: number) => number | 'hold' | undefined;
  /** Per message and how many times that Message-ID reached the end of DATA so far (1 = the first). */
  dataFault: (mail: Captured, nth: number) => DataFault;
  /** Messages the server holds without an answer (`hold`), parsed, for the test to see what is in flight. */
  held: Captured[];
  /** Transactions that reached RCPT TO held without an answer. */
  heldRcpts: string[];
  /** How long the server takes to answer RCPT TO (before DATA) and the end of DATA (after it), in ms. */
  rcptDelayMs: number;
  dataDelayMs: number;
}

export async function startFaultySmtp(): Promise<FaultySmtp> {
  const rcptCount = new Map<string, number>();
  const dataCount = new Map<string, number>();
  const capture: FaultySmtp = {
    url: '',
    port: 0,
    messages: [],
    held: [],
    heldRcpts: [],
    refuse: new Set(),
    down: false,
    delayMs: 0,
    rcptDelayMs: 0,
    dataDelayMs: 0,
    rcptFault: () => undefined,
    dataFault: () => 'accept',
    waitFor: (predicate, timeoutMs) => waitForMail(capture.messages, predicate, timeoutMs),
    close: () => new Promise((r) => server.close(() => r())),
  };
  const connectionOf = (id: string) =>
    [...(server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections].find(
      (c) => c.id === id,
    );
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, session, cb) {
      const nth = (rcptCount.get(address.address) ?? 0) + 1;
      rcptCount.set(address.address, nth);
      const fault = capture.rcptFault(address.address, nth);
      if (fault === 'hold') {
        capture.heldRcpts.push(address.address);
        return; // no answer; the client gives up or dies
      }
      const answer = () =>
        fault
          ? cb(
              Object.assign(new Error(fault >= 500 ? 'mailbox unavailable' : 'try again later'), {
                responseCode: fault,
              }),
            )
          : cb();
      if (capture.rcptDelayMs) setTimeout(answer, capture.rcptDelayMs);
      else answer();
    },
    onData(stream, session, cb) {
      simpleParser(stream).then(async (mail) => {
        if (capture.dataDelayMs) await new Promise((r) => setTimeout(r, capture.dataDelayMs));
        const message = captured(
          mail,
          session.envelope.rcptTo.map((r) => r.address),
        );
        const nth = (dataCount.get(message.messageId) ?? 0) + 1;
        dataCount.set(message.messageId, nth);
        const fault = capture.dataFault(message, nth);
        if (fault === 'hold') {
          capture.held.push(message);
          return; // never answered: the client is killed waiting for it
        }
        capture.messages.push(message);
        if (fault === 'take-and-drop') return connectionOf(session.id)?._socket.destroy();
        cb();
      }, cb);
    },
  });
  // Clients killed or dropped mid-transaction reset their connections: not a server failure.
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_WRITE_AFTER_END')
      console.error('faulty smtp:', err);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  capture.port = (server.server.address() as AddressInfo).port;
  capture.url = `smtp://127.0.0.1:${capture.port}`;
  return capture;
}
