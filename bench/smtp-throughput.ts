/**
 * Sends per second through one nodemailer SMTP connection pool (the worker's settings: pooled,
 * 4 connections) to a real SMTP server on loopback, with rendered nurture templates.
 * `npx tsx bench/smtp-throughput.ts [count]`
 */
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { loadConfigFile } from '../src/config-file.js';

const count = Number(process.argv[2] ?? 2000);
let received = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, _s, cb) {
    stream.on('data', () => {});
    stream.on('end', () => {
      received++;
      cb();
    });
  },
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const port = (server.server.address() as AddressInfo).port;
const { config, templates } = loadConfigFile('config/default.yaml');
const transport = nodemailer.createTransport(`smtp://127.0.0.1:${port}?pool=true&maxConnections=4`);
const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < count) {
      const i = next++;
      const rendered = templates.render('welcome', {
        firstName: 'Dana',
        company: 'Globex',
        links: { click: 'http://x/c', unsubscribe: 'http://x/u', open: 'http://x/o' },
      });
      await transport.sendMail({
        from: config.email.from,
        to: `lead-${i}@buyer.example`,
        ...rendered,
        messageId: `<nurture.${i}.welcome.1.0@acme.example>`,
        headers: { 'X-Lead-Id': String(i) },
      });
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
console.log(
  `${count} mails (${received} received) in ${seconds.toFixed(2)} s: ${(count / seconds).toFixed(0)} sends/s through one pool of 4 connections`,
);
transport.close();
server.close();
