/**
 * Loaded into every test process by scripts/run-tests.mjs (`--import`). When the test runner gives
 * up on a file (SIGTERM at --test-timeout), or CI stops the run, the processes the file started
 * (Temporal servers, worker and service children) go with it: an orphaned server keeps the
 * runner's output pipe open, and the whole run would never end.
 *
 * Plain JavaScript: worker threads (the SDK's workflow thread) inherit the `--import` but not tsx.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

/** Every process under this one (Temporal servers, worker children), children before parents. */
function descendants(root = process.pid) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  /** @type {(pid: number) => number[]} */
  const walk = (pid) => (children.get(pid) ?? []).flatMap((c) => [...walk(c), c]);
  return walk(root);
}

if (isMainThread)
  process.once('SIGTERM', () => {
    for (const pid of descendants()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(143);
  });
