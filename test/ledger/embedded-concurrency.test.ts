/**
 * The embedded database served to several connections at once (the worker, the API and leadctl
 * share one): parameterized queries from many connections, small and large (a batch bigger than a
 * socket read), never interleave (src/ledger/pglite-queue.ts, upstream electric-sql/pglite#1046).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { type EmbeddedDatabase, hostEmbeddedDatabase, vacuumOnce } from '../../src/ledger/database.js';

let dir: string;
let db: EmbeddedDatabase;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'embedded-concurrency-'));
  db = await hostEmbeddedDatabase(join(dir, 'ledger'));
});
after(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('a query that arrives between another connection’s Parse and Bind waits for its Sync', async () => {
  // Client A sends its Parse alone (as a large Bind split over socket reads does), B sends a whole
  // query, then A its Bind, Execute and Sync: without the fix B's Parse replaced A's statement.
  // A speaks the protocol itself (a pg.Client would object to replies it did not ask for).
  type Conn = {
    connect(port: number, host: string): void;
    startup(o: object): void;
    parse(o: object): void;
    bind(o: object): void;
    describe(o: object): void;
    execute(o: object): void;
    sync(): void;
    flush(): void;
    end(): void;
    on(e: string, fn: (m: unknown) => void): void;
    once(e: string, fn: (m: unknown) => void): void;
  };
  const conn = new (pg as unknown as { Connection: new () => Conn }).Connection();
  const url = new URL(db.url);
  await new Promise<void>((resolve, reject) => {
    conn.once('connect', () => conn.startup({ user: 'postgres', database: 'postgres' }));
    conn.once('readyForQuery', () => resolve());
    conn.once('errorMessage', reject);
    conn.connect(Number(url.port), url.hostname);
  });
  const b = new pg.Client({ connectionString: db.url });
  await b.connect();
  try {
    const got: { rows: unknown[]; error?: string } = { rows: [] };
    const done = new Promise<void>((resolve) => {
      conn.on('dataRow', (m) => got.rows.push((m as { fields: unknown[] }).fields));
      conn.on('errorMessage', (m) => (got.error = (m as Error).message));
      conn.on('readyForQuery', () => resolve());
    });
    conn.parse({ text: 'SELECT $1::int + $2::int AS s', types: [] });
    conn.flush();
    await new Promise((r) => setTimeout(r, 100));
    const other = b.query('SELECT $1::text AS t', ['from b']);
    await new Promise((r) => setTimeout(r, 100));
    conn.bind({ values: ['1', '2'] });
    conn.describe({ type: 'P' });
    conn.execute({});
    conn.sync();
    await done;
    assert.equal(got.error, undefined, 'A bound its own statement');
    assert.deepEqual(got.rows, [['3']]);
    assert.deepEqual((await other).rows, [{ t: 'from b' }]);
  } finally {
    conn.end();
    await b.end().catch(() => undefined);
  }
});

it('keeps each connection’s extended-protocol queries together under concurrent load', async () => {
  const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: db.url, max: 8 }));
  try {
    await pools[0]!.query('CREATE TABLE t (id int PRIMARY KEY, a text, b text, c text, d text, e text)');
    const big = 'x'.repeat(200_000); // many socket reads for one Bind
    const work = Array.from({ length: 300 }, (_, i) => {
      const p = pools[i % 3]!;
      if (i % 3 === 0)
        return p
          .query('INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6) RETURNING id', [i, 'a', 'b', 'c', big, 'e'])
          .then((r) => assert.equal(r.rows[0].id, i));
      if (i % 3 === 1) return p.query('SELECT $1::int AS n', [i]).then((r) => assert.equal(r.rows[0].n, i));
      return p.query('SELECT $1::text || $2::text AS s', [`${i}`, '!']).then((r) => assert.equal(r.rows[0].s, `${i}!`));
    });
    await Promise.all(work);
    const n = await pools[1]!.query('SELECT count(*)::int AS n, max(length(d))::int AS m FROM t');
    assert.deepEqual(n.rows[0], { n: 100, m: 200_000 });
    // A failing statement does not stop the queue for the others.
    await assert.rejects(pools[2]!.query('SELECT $1::int / 0 AS boom', [1]));
    assert.equal((await pools[0]!.query('SELECT $1::int AS ok', [7])).rows[0].ok, 7);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

it('the host’s VACUUM (ANALYZE) of the embedded database runs through its socket (PGlite runs no autovacuum)', async () => {
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  try {
    await pool.query('CREATE TABLE v (id int PRIMARY KEY, n int)');
    await pool.query('INSERT INTO v SELECT g, 0 FROM generate_series(1, 500) g');
    for (let i = 0; i < 4; i++) await pool.query('UPDATE v SET n = n + 1');
    // (PGlite keeps no table statistics to count dead rows: VACUUM (ANALYZE) is seen by what ANALYZE records.)
    const tuples = async () =>
      Number((await pool.query("SELECT reltuples FROM pg_class WHERE relname = 'v'")).rows[0].reltuples);
    assert.ok((await tuples()) < 0, 'never analyzed yet');
    assert.equal(await vacuumOnce(db.url), true);
    assert.equal(await tuples(), 500, 'vacuumed and analyzed');
  } finally {
    await pool.end();
  }
});
