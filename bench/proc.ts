/**
 * Small process helpers for the bench: free ports, /proc readings (RSS, CPU seconds), a sampler
 * that keeps the peak RSS of a child, and a cleanup registry that runs on normal exit, on an
 * error and on Ctrl-C (SIGINT) / SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Resident set size of a process in bytes (VmRSS), or undefined once it is gone. */
export function rssBytes(pid: number): number | undefined {
  return statusField(pid, 'VmRSS');
}

/** The kernel's high-water mark of the RSS over the process' life (VmHWM), in bytes. */
export function hwmBytes(pid: number): number | undefined {
  return statusField(pid, 'VmHWM');
}

function statusField(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds a process has used so far (all its threads), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Samples a process' RSS every `intervalMs`; `peak` is the largest value seen since the last `resetPeak`. */
export class RssSampler {
  peak = 0;
  overallPeak = 0;
  last = 0;
  private timer: NodeJS.Timeout;
  constructor(
    readonly pid: number,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }
  sample(): number {
    const rss = rssBytes(this.pid);
    if (rss !== undefined) {
      this.last = rss;
      if (rss > this.peak) this.peak = rss;
      if (rss > this.overallPeak) this.overallPeak = rss;
    }
    return this.last;
  }
  resetPeak(): number {
    const p = this.peak;
    this.peak = this.sample();
    return p;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

export const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

export function fileSize(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/** Size on disk of a SQLite database: the main file plus its write-ahead log. */
export function sqliteBytes(dbPath: string): { db: number; wal: number; total: number } {
  const db = fileSize(dbPath);
  const wal = fileSize(`${dbPath}-wal`);
  return { db, wal, total: db + wal };
}

// ---- cleanup ---------------------------------------------------------------------------------

type Cleanup = () => Promise<void> | void;

/** The signal that interrupted the bench, if one did: errors that follow it are its echo. */
export let interrupted: NodeJS.Signals | undefined;

/**
 * Cleanups run in reverse order of registration, once. While any are registered, SIGINT and
 * SIGTERM run them and exit (130 / 143); `runAll` is what the normal path calls in `finally`.
 */
export class Cleanups {
  private list: { name: string; fn: Cleanup }[] = [];
  private running?: Promise<void>;
  // Stays installed until the cleanup is over: tsx relays a Ctrl-C a second time, and with no
  // listener left its own handler would exit this process before the children are gone.
  private readonly onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = sig;
    process.stderr.write(`\n[bench] ${sig}: stopping the worker and the server, removing temp files…\n`);
    void this.runAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };

  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  add(name: string, fn: Cleanup): void {
    this.list.push({ name, fn });
  }

  /** Runs every cleanup once; a second caller waits for the same run to finish. */
  runAll(): Promise<void> {
    this.running ??= this.run();
    return this.running;
  }

  private async run(): Promise<void> {
    for (const { name, fn } of this.list.reverse()) {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`[bench] cleanup ${name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    this.list = [];
    if (!interrupted) {
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
    }
  }
}
