/**
 * The worker under test, in its own process so the bench can read its RSS and CPU seconds from
 * /proc. The production code path with the default configuration: createLeadWorker, bundling the
 * workflows at start like `npm run worker` does.
 *
 * Started by bench/stack.ts with an IPC channel: env TEMPORAL_ADDRESS, SMTP_URL, DATABASE_URL,
 * PAYLOAD_KEYS, LINK_SECRET.
 * Sends { type: 'ready' } once polling, answers { type: 'memory' } with process.memoryUsage(),
 * shuts down on { type: 'stop' }, SIGTERM/SIGINT, or when the parent goes away (IPC disconnect).
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfigFile } from '../src/config-file.js';
import { dataConverter, parsePayloadKeys } from '../src/codec.js';
import { requireSecrets, settings } from '../src/env.js';
import { LinkSigner } from '../src/links.js';
import { createLeadWorker } from '../src/worker.js';
import { openDatabase } from '../src/ledger/database.js';
import { LeadLedger } from '../src/ledger/ledger.js';

async function main() {
  Runtime.install({ logger: new DefaultLogger((process.env.BENCH_WORKER_LOG_LEVEL as never) ?? 'WARN') });
  const s = settings();
  const secrets = requireSecrets(['LINK_SECRET', 'PAYLOAD_KEYS']);
  const converter = dataConverter(parsePayloadKeys(secrets.PAYLOAD_KEYS));
  const loaded = loadConfigFile();
  const connection = await NativeConnection.connect({ address: s.address });
  const clientConnection = await Connection.connect({ address: s.address });
  const client = new Client({ connection: clientConnection, namespace: s.namespace, dataConverter: converter });
  const { worker, close } = await createLeadWorker({
    connection,
    client,
    dataConverter: converter,
    namespace: s.namespace,
    taskQueue: s.taskQueue,
    loaded,
    smtpUrl: s.smtpUrl,
    ledger: new LeadLedger((await openDatabase({ url: s.databaseUrl, dataDir: s.dataDir })).pool),
    links: new LinkSigner(secrets.LINK_SECRET, s.publicUrl),
  });

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    try {
      worker.shutdown();
    } catch {
      // not running yet or already stopping
    }
  };
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'stop') stop();
    // Where the resident memory is: V8 heap (live and reserved), external buffers, the rest native.
    if (m?.type === 'memory') process.send?.({ type: 'memory', usage: process.memoryUsage() });
  });
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const running = worker.run();
  // Ready once the worker is polling.
  const t0 = Date.now();
  while (worker.getState() !== 'RUNNING' && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
  process.send?.({ type: 'ready', configVersion: loaded.version });
  try {
    await running;
  } finally {
    close();
    await connection.close().catch(() => undefined);
    await clientConnection.close().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`[worker-child] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
