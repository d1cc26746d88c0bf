/**
 * A lead worker in its own process, for tests that kill it (SIGKILL) mid-send and start another.
 * Settings from env: TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE, SMTP_URL, DATABASE_URL; with
 * DIE_AFTER_LEDGER_WRITE=1 the process SIGKILLs itself right after its first write of a lead's row,
 * inside the workflow task that wrote it (test/workflow/task-retry.test.ts). WORKER_CONFIG, a JSON
 * object, overrides parts of the test config (e.g. `webhooks`: test/webhooks/crash.test.ts).
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { LinkSigner } from '../../src/links.js';
import { createLeadWorker } from '../../src/worker.js';
import { openDatabase } from '../../src/ledger/database.js';
import { LeadLedger } from '../../src/ledger/ledger.js';
import { TEST_LINK_SECRET, testConfig, testDataConverter } from './temporal.js';

Runtime.install({ logger: new DefaultLogger('WARN') });
const address = process.env.TEMPORAL_ADDRESS!;
const connection = await NativeConnection.connect({ address });
const client = new Client({ connection: await Connection.connect({ address }), dataConverter: testDataConverter });
const ledger = new LeadLedger((await openDatabase({ url: process.env.DATABASE_URL!, migrate: false })).pool);
if (process.env.DIE_AFTER_LEDGER_WRITE) {
  const record = ledger.record.bind(ledger);
  ledger.record = async (batch) => {
    await record(batch);
    if (batch.lead) process.kill(process.pid, 'SIGKILL');
  };
}
const { worker } = await createLeadWorker({
  connection,
  client,
  dataConverter: testDataConverter,
  taskQueue: process.env.TEMPORAL_TASK_QUEUE!,
  loaded: testConfig(process.env.WORKER_CONFIG ? JSON.parse(process.env.WORKER_CONFIG) : {}),
  smtpUrl: process.env.SMTP_URL!,
  ledger,
  links: new LinkSigner(TEST_LINK_SECRET, 'http://links.test'),
});
console.log('worker ready');
await worker.run();
