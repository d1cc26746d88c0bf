/**
 * The bench harness on a tiny workload: it starts its own dev server, SMTP capture and worker
 * child, runs every phase, writes a results file with the documented keys and cleans up after
 * itself. No timing assertions: figures on a shared CI machine mean nothing; shape and sanity do.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runBench, runScale } from '../../bench/run.js';

const resultsDir = mkdtempSync(join(tmpdir(), 'bench-results-'));
after(() => rmSync(resultsDir, { recursive: true, force: true }));

const tempDirs = () => new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('lead-bench-')));

test('npm run bench runs on a tiny workload and writes a results file with sane figures', async () => {
  const before = tempDirs();
  const { results, file } = await runBench({
    leads: 5,
    events: 3,
    latencySeconds: 2,
    historySample: 5,
    handoffSamples: 2,
    resultsDir,
    quiet: true,
    table: false,
  });

  assert.ok(existsSync(file), 'results file written');
  assert.ok(file.startsWith(resultsDir));
  assert.match(file, /\d{8}T\d{6}Z\.json$/);
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(saved.leads, results.leads);

  for (const key of [
    'leads',
    'eventsPerLead',
    'eventsPerSecond',
    'baselineEventsPerSecond',
    'ratio',
    'latencyMs',
    'historyEventsPerEvent',
    'workerPeakRssMb',
  ]) {
    assert.ok(key in saved, `results have ${key}`);
  }
  assert.equal(saved.leads, 5);
  assert.equal(saved.eventsPerLead, 3);
  const positive = (x: unknown, what: string) =>
    assert.ok(typeof x === 'number' && Number.isFinite(x) && x > 0, `${what} is a positive number, got ${x}`);
  positive(saved.eventsPerSecond, 'eventsPerSecond');
  positive(saved.baselineEventsPerSecond, 'baselineEventsPerSecond');
  positive(saved.ratio, 'ratio');
  positive(saved.endToEnd.ratio, 'end-to-end ratio');
  for (const p of ['p50', 'p95', 'p99'] as const) positive(saved.latencyMs[p], `latencyMs.${p}`);
  assert.ok(
    saved.latencyMs.p50 <= saved.latencyMs.p95 && saved.latencyMs.p95 <= saved.latencyMs.p99,
    'percentiles are ordered',
  );
  assert.equal(typeof saved.handoffLatencyMs, 'object');
  // Every lead event and baseline signal is in history once, plus the workflow's own events.
  assert.ok(saved.historyEventsPerEvent >= 1, `historyEventsPerEvent ${saved.historyEventsPerEvent}`);
  assert.ok(saved.baselineHistoryEventsPerEvent >= 1);
  positive(saved.workflowTasksPerEvent, 'workflowTasksPerEvent');
  positive(saved.workerPeakRssMb, 'workerPeakRssMb');
  positive(saved.workerCpuSeconds, 'workerCpuSeconds');
  positive(saved.dbBytesPerLead, 'dbBytesPerLead');
  assert.ok(saved.machine.cpuCount >= 1 && saved.machine.totalMemMb > 0);

  // Cleaned up: no temp folder of this run is left behind.
  const leftover = [...tempDirs()].filter((d) => !before.has(d));
  assert.deepEqual(leftover, []);
});

test('npm run bench -- --scale runs on tiny steps: live leads, worker RSS and V8 heap per step', async () => {
  const before = tempDirs();
  const { file } = await runScale({ steps: [6, 12], sample: 3, resultsDir, quiet: true });
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(saved.mode, 'scale');
  const steps = saved.scale.steps as {
    target: number;
    created: number;
    liveLeads: number;
    completed: boolean;
    workerRssMb: number;
    workerHeapUsedMb: number;
    workerHeapTotalMb: number;
    latencyMs: { p99: number };
  }[];
  assert.deepEqual(
    steps.map((s) => [s.target, s.created, s.completed]),
    [
      [6, 6, true],
      [12, 12, true],
    ],
  );
  assert.equal(steps[1]!.liveLeads, 12, 'every lead created is running (sleeping) when the step is measured');
  for (const s of steps) {
    assert.ok(
      s.workerHeapUsedMb > 0 && s.workerHeapUsedMb <= s.workerHeapTotalMb,
      `heap ${s.workerHeapUsedMb} of ${s.workerHeapTotalMb} MB`,
    );
    assert.ok(s.workerHeapTotalMb < s.workerRssMb, 'the V8 heap is part of the RSS');
    assert.ok(s.latencyMs.p99 > 0);
  }
  assert.deepEqual(
    [...tempDirs()].filter((d) => !before.has(d)),
    [],
  );
});
