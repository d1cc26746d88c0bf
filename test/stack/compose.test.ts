/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: the file parses, the
 * services and images are the production topology, the worker scales (no container_name, no fixed
 * host port), the engine has a PostgreSQL of its own for the lead ledger (ledger-db, apart from
 * Temporal's; the apps' DATABASE_URL, as compose makes it, migrates a real server), each app
 * service gets the env it reads (names checked against src/), the search
 * attribute step registers exactly workflows/defs.ts's attributes (its script is run for real
 * against a dev server, twice), and the image's command, `npm run worker|api` through the image's
 * npm script shell, starts the service and stops it cleanly on SIGTERM.
 */
import { Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ROOT, temporalBinaries } from '../../src/env.js';
import { MIGRATIONS_DIR, openDatabase } from '../../src/ledger/database.js';
import { startPostgres } from '../helpers/postgres.js';
import { SEARCH_ATTRIBUTES } from '../../workflows/defs.js';
import { freePort } from '../../bench/proc.js';

type Service = {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  container_name?: string;
  ports?: string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }> | string[];
  deploy?: { replicas?: number };
  volumes?: string[];
  init?: boolean;
  healthcheck?: { test?: string[] | string };
};
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
/** The Dockerfile with line continuations joined: one instruction per line. */
const instructions = dockerfile.replace(/\\\n\s*/g, ' ');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

/** What compose makes of `${VAR:-default}` / `${VAR:?message}` / `$$` with only `vars` set in the environment. */
function interpolate(value: string | number, vars: Record<string, string> = {}): { value: string; required: string[] } {
  const required: string[] = [];
  const out = String(value).replace(
    /\$\$|\$\{(\w+)(?::?([-?])([^}]*))?\}/g,
    (m, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (m === '$$') return '$';
      if (op === '?') required.push(name!);
      if (vars[name!] !== undefined) return vars[name!]!;
      return op === '-' ? (arg ?? '') : '';
    },
  );
  return { value: out, required };
}
const env = (svc: string) =>
  Object.fromEntries(Object.entries(services[svc]?.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));
const cmd = (svc: string) => {
  const c = services[svc]?.command;
  return Array.isArray(c) ? c : c?.split(' ');
};

/** Every process.env name the TypeScript under src/, activities/ and workflows/ reads. */
function envNamesReadBySource(): Set<string> {
  const names = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:process\.env|\benv)(?:\.(\w+)|\[['"](\w+)['"]\])/g)) names.add(m[1] ?? m[2]!);
    for (const m of text.matchAll(/pick\('(\w+)'/g)) names.add(m[1]!);
    for (const m of text.matchAll(/from '(\.[^']+)'/g)) visit(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  };
  visit(join(ROOT, 'src/worker.ts'));
  visit(join(ROOT, 'src/api/main.ts'));
  return names;
}

/** The files `npm run worker` and `npm run api` load, relative to the repository (relative imports, followed). */
function filesLoadedBy(entries: string[]): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g))
      visit(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  };
  for (const e of entries) visit(join(ROOT, e));
  return [...seen].map((f) => relative(ROOT, f));
}

function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${command} ${args.join(' ')} did not finish within ${(opts.timeoutMs ?? 60_000) / 1000}s:\n${out}`),
      );
    }, opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, out });
    });
  });
}

const cleanup: (() => unknown)[] = [];
after(async () => {
  for (const fn of cleanup.reverse())
    await Promise.resolve()
      .then(fn)
      .catch(() => undefined);
});

describe('docker-compose.yml', () => {
  it('has the production topology with pinned images', () => {
    assert.deepEqual(Object.keys(services).sort(), [
      'api',
      'ledger-db',
      'mailpit',
      'postgresql',
      'temporal',
      'temporal-setup',
      'temporal-ui',
      'worker',
    ]);
    const images: Record<string, RegExp> = {
      postgresql: /^postgres:\d+/,
      'ledger-db': /^postgres:\d+/,
      temporal: /^temporalio\/auto-setup:\d+\.\d+\.\d+$/,
      'temporal-setup': /^temporalio\/admin-tools:\d+\.\d+\.\d+/,
      'temporal-ui': /^temporalio\/ui:\d+\.\d+\.\d+$/,
      mailpit: /^axllent\/mailpit:v\d+\.\d+/,
    };
    for (const [svc, re] of Object.entries(images)) assert.match(services[svc]!.image ?? '', re, `${svc} image`);
    const serverVersion = services.temporal!.image!.split(':')[1];
    assert.ok(
      services['temporal-setup']!.image!.includes(`:${serverVersion}-`),
      'admin-tools matches the server version',
    );
    assert.equal(env('temporal').DB?.value, 'postgres12', 'Temporal persists to PostgreSQL');
    assert.equal(env('temporal').POSTGRES_SEEDS?.value, 'postgresql', 'Temporal finds the postgresql service');
    assert.equal(env('temporal-ui').TEMPORAL_ADDRESS?.value, 'temporal:7233');
    assert.ok(
      services['temporal-ui']!.ports?.some((p) => p.endsWith(':8080')),
      'the UI is published',
    );
    assert.ok(
      services.mailpit!.ports?.some((p) => p.endsWith(':8025')),
      'the Mailpit UI is published',
    );
    for (const [name, svc] of Object.entries(services)) {
      const deps = Array.isArray(svc.depends_on) ? svc.depends_on : Object.keys(svc.depends_on ?? {});
      for (const d of deps) assert.ok(services[d], `${name} depends on an existing service (${d})`);
      for (const v of svc.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (!source.startsWith('.') && !source.startsWith('/'))
          assert.ok(compose.volumes && source in compose.volumes, `${name}: named volume ${source} is declared`);
      }
    }
  });

  it('runs the worker scalable: replicas, no container_name, no host port', () => {
    const w = services.worker!;
    assert.ok((w.deploy?.replicas ?? 1) >= 2, 'deploy.replicas >= 2');
    assert.equal(w.container_name, undefined, 'a container_name would stop `--scale worker=N`');
    assert.equal(w.ports, undefined, 'a fixed host port would stop `--scale worker=N`');
    assert.ok(w.build, 'the worker is built from the Dockerfile');
    assert.equal(w.init, true, 'an init process passes docker stop on');
    assert.deepEqual(cmd('worker'), ['npm', 'run', 'worker']);
    assert.deepEqual(cmd('api'), ['npm', 'run', 'api']);
    assert.equal(services.api!.container_name, undefined);
    assert.ok(services.api!.ports?.includes('3000:3000'), 'the API on port 3000');
    // What the replicas share (the send ledger among it) is the lead ledger's database, not a volume.
    assert.equal(env('worker').SEND_LEDGER_DIR, undefined, 'no SEND_LEDGER_DIR: the send ledger is in the lead ledger');
    assert.deepEqual(w.volumes ?? [], [], 'the worker mounts no shared volume');
    assert.ok(!compose.volumes || !('send-ledger' in compose.volumes), 'no send-ledger volume');
  });

  it("gives the engine its own PostgreSQL, ledger-db, apart from Temporal's: password required, healthy before the apps start", () => {
    const db = services['ledger-db']!;
    const e = env('ledger-db');
    assert.deepEqual(e.POSTGRES_PASSWORD?.required, ['LEDGER_DB_PASSWORD'], 'its password must be given');
    assert.notEqual(
      e.POSTGRES_PASSWORD?.required[0],
      env('postgresql').POSTGRES_PASSWORD?.required[0],
      "not Temporal's password",
    );
    const user = e.POSTGRES_USER!.value;
    const database = e.POSTGRES_DB?.value ?? user;
    assert.ok(user && user !== env('postgresql').POSTGRES_USER?.value, "a user of its own, not Temporal's");
    assert.equal(env('temporal').POSTGRES_SEEDS?.value, 'postgresql', 'Temporal stays on its own database');

    const data = db.volumes?.find((v) => v.endsWith(':/var/lib/postgresql/data'));
    assert.ok(data, 'its data on a volume');
    const volume = data.split(':')[0]!;
    assert.ok(compose.volumes && volume in compose.volumes, `named volume ${volume} is declared`);
    assert.ok(!(services.postgresql!.volumes ?? []).some((v) => v.startsWith(`${volume}:`)), "not Temporal's volume");

    const check = Array.isArray(db.healthcheck?.test) ? db.healthcheck.test.join(' ') : (db.healthcheck?.test ?? '');
    assert.match(check, new RegExp(`pg_isready -U ${user} -d ${database}`), 'a healthcheck that asks the server');
    for (const p of db.ports ?? []) assert.match(String(p), /^127\.0\.0\.1:\d+:5432$/, 'published on 127.0.0.1 only');

    for (const svc of ['worker', 'api']) {
      const url = env(svc).DATABASE_URL;
      assert.ok(url, `${svc} sets DATABASE_URL`);
      assert.deepEqual(
        url.required,
        ['LEDGER_DB_PASSWORD'],
        `${svc}: the password in DATABASE_URL is the required one`,
      );
      const u = new URL(interpolate(services[svc]!.environment!.DATABASE_URL!, { LEDGER_DB_PASSWORD: 'pw' }).value);
      assert.deepEqual(
        [u.protocol, u.username, u.password, u.hostname, u.port, u.pathname],
        ['postgres:', user, 'pw', 'ledger-db', '5432', `/${database}`],
        `${svc}: DATABASE_URL names ledger-db`,
      );
      const deps = services[svc]!.depends_on as Record<string, { condition: string }>;
      assert.equal(deps['ledger-db']?.condition, 'service_healthy', `${svc} starts once ledger-db is healthy`);
    }
  });

  it("the apps' DATABASE_URL, as compose makes it, opens and migrates a real PostgreSQL as ledger-db's user", async () => {
    const server = await startPostgres();
    cleanup.push(() => server.stop());
    const e = env('ledger-db');
    const user = e.POSTGRES_USER!.value;
    const database = e.POSTGRES_DB?.value ?? user;
    const password = 'a1b2c3d4e5f6'; // openssl rand -hex, as the compose file's header makes it
    const admin = new URL(server.url);
    const setup = await openDatabase({ url: server.url, migrate: false, max: 1 });
    // What the postgres image does with POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on first start.
    await setup.pool.query(`CREATE ROLE ${user} LOGIN SUPERUSER PASSWORD '${password}'`);
    await setup.pool.query(`CREATE DATABASE ${database} OWNER ${user}`);
    await setup.close();
    const url = interpolate(services.worker!.environment!.DATABASE_URL!, {
      LEDGER_DB_PASSWORD: password,
    }).value.replace('@ledger-db:5432/', `@127.0.0.1:${admin.port}/`);
    const db = await openDatabase({ url });
    try {
      assert.equal((await db.pool.query('SELECT current_user AS u, current_database() AS d')).rows[0].u, user);
      assert.equal(
        (await db.pool.query('SELECT count(*)::int AS n FROM leads')).rows[0].n,
        0,
        'the schema is migrated',
      );
      assert.doesNotMatch(db.describe, new RegExp(password), 'where it is, without the password');
    } finally {
      await db.close();
    }
  });

  it('wires the env each app service reads, with the names src/ reads', () => {
    const expectations: Record<string, Record<string, string | RegExp>> = {
      worker: {
        TEMPORAL_ADDRESS: 'temporal:7233',
        TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TASK_QUEUE: 'lead-nurture',
        SMTP_URL: 'smtp://mailpit:1025',
        LINK_SECRET: 'required',
        PAYLOAD_KEYS: 'required',
        PUBLIC_URL: /^https?:\/\//,
      },
      api: {
        TEMPORAL_ADDRESS: 'temporal:7233',
        TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TASK_QUEUE: 'lead-nurture',
        API_PORT: '3000',
        API_TOKEN: 'required',
        LINK_SECRET: 'required',
        PAYLOAD_KEYS: 'required',
        PUBLIC_URL: /^https?:\/\//,
      },
    };
    for (const [svc, wanted] of Object.entries(expectations)) {
      const e = env(svc);
      for (const [name, value] of Object.entries(wanted)) {
        assert.ok(e[name], `${svc} sets ${name}`);
        if (value === 'required')
          assert.deepEqual(
            e[name]!.required,
            [name],
            `${svc}: ${name} must be given (\${${name}:?…}), never defaulted to a known secret`,
          );
        else if (value instanceof RegExp) assert.match(e[name]!.value, value, `${svc} ${name}`);
        else assert.equal(e[name]!.value, value, `${svc} ${name}`);
      }
    }
    const [smtpHost] = env('worker').SMTP_URL!.value.replace('smtp://', '').split(':');
    assert.ok(services[smtpHost!], 'SMTP_URL names the mailpit service');
    const read = envNamesReadBySource();
    for (const svc of ['worker', 'api']) {
      for (const name of Object.keys(env(svc)))
        assert.ok(read.has(name), `${svc} sets ${name}, which nothing in the ${svc}'s code reads (a typo?)`);
    }
  });

  it('publishes only the API on every interface: the unauthenticated Temporal frontend, UI and Mailpit on 127.0.0.1', () => {
    const published = Object.entries(services).flatMap(([name, svc]) =>
      (svc.ports ?? []).map((p) => ({ name, p: String(p) })),
    );
    for (const { name, p } of published) {
      // "HOST:CONTAINER" or "CONTAINER" binds every interface; only "127.0.0.1:HOST:CONTAINER" stays on this host.
      if (name === 'api') continue;
      assert.match(
        p,
        /^127\.0\.0\.1:\d+:\d+$/,
        `${name} publishes ${p} on every interface: it has no authentication of its own`,
      );
    }
    for (const port of ['7233', '8080', '8025'])
      assert.ok(
        published.some(({ p }) => p.startsWith('127.0.0.1:') && p.endsWith(`:${port}`)),
        `${port} on 127.0.0.1 for ops on this host`,
      );
    assert.deepEqual(
      published.filter(({ p }) => !p.startsWith('127.0.0.1:')).map(({ name }) => name),
      ['api'],
      'the API, behind its token, is the one service on every interface',
    );
  });

  it('has no default for any secret: the database password, the API token, the link secret, the payload keys', () => {
    const raw = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    for (const name of ['POSTGRES_PASSWORD', 'LEDGER_DB_PASSWORD', 'API_TOKEN', 'LINK_SECRET', 'PAYLOAD_KEYS']) {
      assert.equal(new RegExp(`\\$\\{${name}:?-`).test(raw), false, `\${${name}} has a default`);
      assert.ok(new RegExp(`\\$\\{${name}:\\?`).test(raw), `\${${name}:?…} makes compose refuse to start without it`);
    }
    assert.deepEqual(env('postgresql').POSTGRES_PASSWORD?.required, ['POSTGRES_PASSWORD']);
    assert.deepEqual(
      env('temporal').POSTGRES_PWD?.required,
      ['POSTGRES_PASSWORD'],
      'Temporal gets the same required password',
    );
    assert.ok(!/\btemporal\b/.test(env('postgresql').POSTGRES_PASSWORD!.value), 'not the old default password');
  });

  it("points the Temporal UI at the API's codec server, whose CORS allows the UI's origin", () => {
    const endpoint = new URL(env('temporal-ui').TEMPORAL_CODEC_ENDPOINT!.value);
    assert.equal(endpoint.pathname, '/codec', 'the UI calls <endpoint>/decode, the API answers /codec/decode');
    const apiPort = services.api!.ports!.map((p) => String(p).split(':')[0]);
    assert.ok(apiPort.includes(endpoint.port), `the endpoint is the API's published port (${endpoint.port})`);
    const uiHostPort = services['temporal-ui']!.ports!.map((p) => String(p).split(':').at(-2));
    const origins = env('api').CODEC_CORS_ORIGINS!.value.split(',');
    assert.ok(
      origins.some((o) => new URL(o).port === uiHostPort[0]),
      `CODEC_CORS_ORIGINS (${origins}) has the UI's origin`,
    );
  });

  it('its setup step registers exactly the lead search attributes, idempotently (run against a dev server)', async () => {
    const raw = services['temporal-setup']!.command;
    const script = Array.isArray(raw) ? raw.join(' ') : raw!;
    assert.deepEqual(services['temporal-setup']!.entrypoint, ['/bin/sh', '-c']);
    assert.equal(
      script.replace(/\$\$/g, '').match(/\$/g),
      null,
      'every $ in the script is escaped as $$ (compose would interpolate it)',
    );
    const pairs =
      script
        .match(/for attr in ([^;]+);/)?.[1]
        ?.trim()
        .split(/\s+/) ?? [];
    assert.deepEqual(
      pairs.sort(),
      SEARCH_ATTRIBUTES.map(
        (k) =>
          `${k.name}=${k.type
            .split('_')
            .map((w) => w[0] + w.slice(1).toLowerCase())
            .join('')}`,
      ).sort(),
    );

    const cli = temporalBinaries().cli;
    const port = await freePort();
    const server: ChildProcess = spawn(
      cli,
      ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error'],
      { stdio: 'ignore' },
    );
    cleanup.push(() => server.kill('SIGTERM'));
    const shellEnv = {
      ...process.env,
      PATH: `${dirname(cli)}:${process.env.PATH}`,
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    };
    const unescaped = interpolate(script).value;
    const first = await run('/bin/sh', ['-c', unescaped], { env: shellEnv });
    assert.equal(first.code, 0, first.out);
    assert.equal(first.out.match(/registered as/g)?.length, SEARCH_ATTRIBUTES.length, first.out);
    const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    cleanup.push(() => connection.close());
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    const typeNumber: Record<string, number> = { KEYWORD: 2, INT: 3, DATETIME: 6 };
    for (const k of SEARCH_ATTRIBUTES)
      assert.equal(customAttributes?.[k.name], typeNumber[k.type], `${k.name} registered as ${k.type}`);
    const second = await run('/bin/sh', ['-c', unescaped], { env: shellEnv });
    assert.equal(second.code, 0, second.out);
    assert.equal(second.out.match(/already registered/g)?.length, SEARCH_ATTRIBUTES.length, second.out);
  });
});

describe('Dockerfile', () => {
  it('builds from node:20-bookworm-slim without the Temporal binaries and ships what the services load', () => {
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    assert.ok(
      froms.length >= 1 && froms.every((f) => f === 'node:20-bookworm-slim'),
      `FROM node:20-bookworm-slim (${froms.join(', ')})`,
    );
    const ci = instructions.match(/^RUN\s+(.*npm install[^\n]*)/m)?.[1] ?? '';
    assert.match(
      ci,
      /TEMPORAL_CLI_PATH=\S+ TEMPORAL_TEST_SERVER_PATH=\S+/,
      'npm install skips the Temporal CLI download (scripts/setup-temporal.mjs honours both paths)',
    );
    assert.match(ci, /--omit=dev/);
    const setup = readFileSync(join(ROOT, 'scripts/setup-temporal.mjs'), 'utf8');
    assert.match(
      setup,
      /process\.env\.TEMPORAL_CLI_PATH && process\.env\.TEMPORAL_TEST_SERVER_PATH/,
      'the setup script still skips on both variables',
    );
    const copied = [...dockerfile.matchAll(/^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$/gm)].flatMap((m) =>
      m[1]!.split(/\s+/),
    );
    const loaded = filesLoadedBy(['src/worker.ts', 'src/api/main.ts', 'workflows/index.ts']); // the worker bundles workflows/index.ts by path
    for (const f of loaded)
      assert.ok(
        copied.some((c) => f === c || f.startsWith(`${c}/`)),
        `${f} is loaded by the worker or the API but not copied into the image`,
      );
    for (const dir of ['config', 'templates', 'tsconfig.json', 'package.json'])
      assert.ok(copied.includes(dir), `the image has ${dir}`);
    assert.ok(
      copied.includes(relative(ROOT, MIGRATIONS_DIR)),
      'the image has the migrations the worker and the API apply at start (read by path, not imported)',
    );
  });

  it('runs `npm run worker` by default and `npm run api` by command', () => {
    const cmdLine = dockerfile.match(/^CMD\s+(.+)$/m)?.[1];
    assert.ok(cmdLine, 'a CMD');
    assert.deepEqual(JSON.parse(cmdLine), ['npm', 'run', 'worker'], 'CMD in exec form');
    assert.equal(
      dockerfile.match(/^ENTRYPOINT/m),
      null,
      'no ENTRYPOINT, so `docker run IMAGE npm run api` works as written',
    );
    assert.equal(pkg.scripts.worker, 'tsx src/worker.ts');
    assert.equal(pkg.scripts.api, 'tsx src/api/main.ts');
  });

  it("the image's npm script shell hands SIGTERM to the service: `npm run api` closes and exits 0", async () => {
    const shellPath = dockerfile.match(/^\s*npm_config_script_shell=(\S+)/m)?.[1];
    assert.ok(shellPath, 'the image sets npm_config_script_shell');
    const heredoc = dockerfile.match(
      new RegExp(`^COPY[^\\n]*<<"EOF" ${shellPath.replace(/[/.]/g, '\\$&')}\\n([\\s\\S]*?)^EOF$`, 'm'),
    )?.[1];
    assert.ok(heredoc, `the Dockerfile writes ${shellPath} from a heredoc`);
    const shellDir = mkdtempSync(join(tmpdir(), 'npm-shell-'));
    cleanup.push(() => rmSync(shellDir, { recursive: true, force: true }));
    const shell = join(shellDir, 'npm-exec-shell');
    writeFileSync(shell, heredoc);
    chmodSync(shell, 0o755);

    const apiPort = await freePort();
    const child = spawn('npm', ['run', 'api'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        npm_config_script_shell: shell,
        NPM_CONFIG_UPDATE_NOTIFIER: 'false',
        API_PORT: String(apiPort),
        API_TOKEN: 'compose-test-token',
        LINK_SECRET: 'compose-test-link-secret',
        PAYLOAD_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
        TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
        API_LOG: '0',
        DATA_DIR: shellDir,
        DATABASE_URL: '', // an embedded ledger, if the API opens one, in a temp folder, not the repository's .data/
      },
    });
    cleanup.push(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const until = Date.now() + 60_000;
    while (!out.includes('listening on')) {
      assert.ok(Date.now() < until, `npm run api did not start:\n${out}`);
      assert.equal(child.exitCode, null, `npm run api exited:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGTERM'); // what `docker stop` does, through init, to npm
    const code = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref()),
    ]);
    assert.equal(code, 0, `npm exits 0 once the API closed:\n${out}`);
    assert.match(out, /SIGTERM: closing/, 'the API itself got the SIGTERM');
    const open = await new Promise<boolean>((r) => {
      const s = connect({ port: apiPort, host: '127.0.0.1' });
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    assert.equal(open, false, 'nothing is left listening on the API port');
  });
});
