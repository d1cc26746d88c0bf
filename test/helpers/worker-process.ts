/**
 * Lead workers in processes of their own, for tests that kill one (SIGKILL) mid-send or mid-task
 * and start another: test/helpers/worker-child.ts (or another script beside it) with its settings
 * in env. Every process started here is killed by `killWorkerProcesses()` (call it in `after`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const running = new Set<ChildProcess>();

export interface WorkerProcessOptions {
  address: string;
  taskQueue: string;
  smtpUrl: string;
  /** The lead ledger's database (its send ledger is what a killed worker's successor reads). */
  databaseUrl: string;
  /** A script in test/helpers/ (default worker-child.ts). */
  script?: string;
  env?: Record<string, string>;
}

/** Resolves once the worker polls (it prints `worker ready`); rejects if it exits first. */
export function startWorkerProcess(o: WorkerProcessOptions): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, o.script ?? 'worker-child.ts')], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: o.address,
      TEMPORAL_TASK_QUEUE: o.taskQueue,
      SMTP_URL: o.smtpUrl,
      DATABASE_URL: o.databaseUrl,
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('worker ready') && resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
}

/** SIGKILLs a worker process and waits until it is gone. */
export async function killWorkerProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

export function killWorkerProcesses(): void {
  for (const c of running) c.kill('SIGKILL');
}
