/**
 * A real PostgreSQL server for a test file: Debian's postgresql binaries, a fresh cluster made by
 * `initdb` in a temp folder, started by `pg_ctl` on a free loopback port, removed at the end.
 * PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the `postgres` user
 * the Debian package creates. `.ci/run` installs the package when it is missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/proc.js';

export interface PostgresServer {
  url: string;
  /** Whether it is up: false from pause() to resume(), and once stopped. */
  readonly running: boolean;
  /** Takes the server down (`pg_ctl stop -m fast`: sessions are cut, new connections refused); its data stays. */
  pause(): Promise<void>;
  /** Starts it again on the same port and data directory, once it accepts connections. */
  resume(): Promise<void>;
  /** pause() then resume(). */
  restart(): Promise<void>;
  /** Stops it for good and removes its files. */
  stop(): Promise<void>;
}

/** The folder of Debian's PostgreSQL server binaries (the newest installed), or undefined. */
export function postgresBinDir(): string | undefined {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(base, versions[0]!, 'bin') : undefined;
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin)
    throw new Error(
      "PostgreSQL's server binaries are not installed: apt-get install -y postgresql (or set PG_BIN_DIR)",
    );
  const dir = mkdtempSync(join(tmpdir(), 'lead-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]]
      : [join(bin, cmd), args];
    return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString();
  };
  // pause/resume run while the test's worker and API serve in this process: not blocking its event loop.
  const runAsync = async (cmd: string, args: string[]) => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]]
      : [join(bin, cmd), args];
    await promisify(execFile)(file, argv, { timeout: 60_000 });
  };
  if (asRoot) {
    const ids = execFileSync('id', ['-u', 'postgres']).toString().trim();
    const gid = execFileSync('id', ['-g', 'postgres']).toString().trim();
    chownSync(dir, Number(ids), Number(gid));
  }
  const port = await freePort();
  const startArgs = [
    '-D',
    data,
    '-l',
    join(dir, 'server.log'),
    '-w',
    '-t',
    '60',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
    'start',
  ];
  let running = false;
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    run('pg_ctl', startArgs);
    running = true;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`could not start PostgreSQL from ${bin}: ${e.stderr?.toString().trim() || e.message}`);
  }
  const pause = async () => {
    await runAsync('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
    running = false;
  };
  const resume = async () => {
    await runAsync('pg_ctl', startArgs);
    running = true;
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    get running() {
      return running;
    },
    pause,
    resume,
    async restart() {
      await pause();
      await resume();
    },
    async stop() {
      try {
        if (running) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        running = false;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
