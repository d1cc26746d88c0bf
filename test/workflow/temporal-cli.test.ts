/**
 * Ops drive a lead with the plain `temporal` CLI on the dev server: start it, signal an event,
 * query its state, and find it by search attribute. Payloads are encrypted, so the CLI encodes its
 * inputs and decodes the results through the API's codec server (`--codec-endpoint`, with a token),
 * as docs/operations.md tells ops to.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { temporalBinaries } from '../../src/env.js';
import { TOKEN, useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';

const run = promisify(execFile);
let codecArgs: string[];
const h = useStack({ worker: true, api: true }, async ({ app }) => {
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  codecArgs = ['--codec-endpoint', `${address}/codec`, '--codec-auth', `Bearer ${TOKEN}`];
});

const cli = async (...args: string[]) =>
  (await run(temporalBinaries().cli, [...args, '--address', h.env.address, ...codecArgs], { encoding: 'utf8' })).stdout;
/** The CLI without the codec server: what anyone with access to Temporal alone sees. */
const rawCli = async (...args: string[]) =>
  (await run(temporalBinaries().cli, [...args, '--address', h.env.address], { encoding: 'utf8' })).stdout;

test('temporal workflow start / signal / query --type state', async () => {
  await h.run(async () => {
    await cli(
      'workflow',
      'start',
      '--type',
      'leadWorkflow',
      '--task-queue',
      h.taskQueue,
      '--workflow-id',
      'lead-cli-1',
      '--input',
      JSON.stringify({ leadId: 'cli-1', email: 'cli@buyer.example', country: 'US', seniority: 'vp', companySize: 400 }),
    );
    await cli(
      'workflow',
      'signal',
      '--workflow-id',
      'lead-cli-1',
      '--name',
      'event',
      '--input',
      JSON.stringify({ leadId: 'cli-1', eventId: 'cli-e1', type: 'webinar_attended' }),
    );
    let state: { stage: string; score: { total: number; fit: number; engagement: number } } | undefined;
    for (let i = 0; i < 100; i++) {
      const out = await cli('workflow', 'query', '--workflow-id', 'lead-cli-1', '--type', 'state', '--output', 'json');
      state = JSON.parse(out).queryResult[0];
      if (state!.score.engagement === 15) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(state!.stage, 'mql');
    assert.deepEqual(
      { total: state!.score.total, fit: state!.score.fit, engagement: state!.score.engagement },
      { total: 50, fit: 35, engagement: 15 },
    );
    // Without the codec server the same query is ciphertext, and the history holds no address.
    const raw = await rawCli('workflow', 'query', '--workflow-id', 'lead-cli-1', '--type', 'state', '--output', 'json');
    const payload = JSON.parse(raw).queryResult?.payloads?.[0];
    assert.equal(
      Buffer.from(payload?.metadata?.encoding ?? '', 'base64').toString(),
      'binary/encrypted',
      `undecoded, the state is ciphertext: ${raw.slice(0, 300)}`,
    );
    assert.ok(!raw.includes('"stage"') && !Buffer.from(payload.data, 'base64').includes('"stage"'));
    assert.ok(
      !(await rawCli('workflow', 'show', '--workflow-id', 'lead-cli-1', '--output', 'json')).includes(
        'cli@buyer.example',
      ),
      'the history holds no plaintext address',
    );
    // Ops find it in visibility by its search attributes.
    let listed = '';
    for (let i = 0; i < 100 && !listed.includes('lead-cli-1'); i++) {
      listed = await cli('workflow', 'list', '--query', `LeadStage = 'mql' AND LeadScore >= 40`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(listed, /lead-cli-1/);
  });
});

test('a configuration change reaches running leads through a batch signal (configChanged)', async () => {
  await cli(
    'workflow',
    'start',
    '--type',
    'leadWorkflow',
    '--task-queue',
    h.taskQueue,
    '--workflow-id',
    'lead-cli-2',
    '--input',
    JSON.stringify({ leadId: 'cli-2', email: 'cfg@buyer.example', country: 'US', seniority: 'vp' }),
  );
  const query = async () =>
    JSON.parse(await cli('workflow', 'query', '--workflow-id', 'lead-cli-2', '--type', 'state', '--output', 'json'))
      .queryResult[0];
  let before: { configVersion: string; score: { fit: number } } | undefined;
  for (let i = 0; i < 100 && !before; i++) {
    before = await query().catch(() => undefined);
    if (!before) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(before!.score.fit, 20);
  // Deploy a worker with new rules on the same task queue: VPs are now worth 50.
  await h.worker.close();
  const base = testConfig().config;
  const next = testConfig({
    scoring: {
      thresholds: base.scoring.models[0]!.thresholds,
      fit: [{ field: 'seniority', in: ['vp'], points: 50 }],
      disqualify: [],
      behavior: base.scoring.models[0]!.behavior,
      decay: { halfLife: '30d' },
    },
  });
  await h.startWorker({ loaded: next, taskQueue: h.taskQueue });
  assert.equal(before!.configVersion === next.version, false);
  // One batch signal to every running lead, the way ops roll out a config.
  for (let i = 0; i < 100; i++) {
    const listed = await cli('workflow', 'list', '--query', "WorkflowId = 'lead-cli-2'");
    if (listed.includes('lead-cli-2')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await cli(
    'workflow',
    'signal',
    '--name',
    'configChanged',
    '--query',
    "WorkflowType = 'leadWorkflow' AND ExecutionStatus = 'Running'",
    '--yes',
    '--reason',
    'config rollout',
  );
  let after: { configVersion: string; score: { fit: number }; stage: string } | undefined;
  for (let i = 0; i < 200; i++) {
    after = await query();
    if (after!.configVersion === next.version) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(after!.configVersion, next.version);
  assert.equal(after!.score.fit, 50);
  assert.equal(after!.stage, 'mql', 'the new fit alone crosses the mql threshold');
});
