/**
 * worker-child.ts with the nurture steps of the `npm start` demo config (seconds apart, an mql
 * track whose first step has no delay), as the fault run of issue 9 had them: deadlines then fall
 * between the signals of the wedge reproduction (test/workflow/wedge.test.ts).
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { LinkSigner } from '../../src/links.js';
import { createLeadWorker } from '../../src/worker.js';
import { openDatabase } from '../../src/ledger/database.js';
import { LeadLedger } from '../../src/ledger/ledger.js';
import { TEST_LINK_SECRET, testConfig, testDataConverter } from './temporal.js';

export const FAST_NURTURE = {
  tracks: [
    {
      id: 'welcome',
      for: ['lead'],
      steps: [
        { after: '0s', template: 'welcome' },
        { after: '4s', template: 'guide' },
        { after: '4s', template: 'case-study' },
      ],
    },
    {
      id: 'mql',
      for: ['mql'],
      steps: [
        { after: '0s', template: 'webinar-invite' },
        { after: '4s', template: 'pricing-overview' },
      ],
    },
    { id: 'recycle', for: ['recycled'], steps: [{ after: '0s', template: 'come-back' }] },
  ],
};

if (process.env.TEMPORAL_ADDRESS) {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const address = process.env.TEMPORAL_ADDRESS;
  const connection = await NativeConnection.connect({ address });
  const client = new Client({ connection: await Connection.connect({ address }), dataConverter: testDataConverter });
  const { worker } = await createLeadWorker({
    connection,
    client,
    dataConverter: testDataConverter,
    taskQueue: process.env.TEMPORAL_TASK_QUEUE!,
    loaded: testConfig({ nurture: FAST_NURTURE }),
    smtpUrl: process.env.SMTP_URL!,
    ledger: new LeadLedger((await openDatabase({ url: process.env.DATABASE_URL!, migrate: false })).pool),
    links: new LinkSigner(TEST_LINK_SECRET, 'http://links.test'),
  });
  console.log('worker ready');
  await worker.run();
}
