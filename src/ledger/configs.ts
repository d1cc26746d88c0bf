/**
 * The configs table (migrations/1796300000000_configs.sql): every config version leads scored
 * with, and the rolled-out one, which every worker runs (`leadctl rollout`).
 */
import type pg from 'pg';
import type { StoredConfig } from '../config-file.js';

export interface ConfigRow extends StoredConfig {
  rolledOutAt?: string;
}

const row = (r: Record<string, unknown>): ConfigRow => ({
  version: r.version as string,
  raw: r.raw,
  templates: r.templates as StoredConfig['templates'],
  ...(r.rolled_out_at ? { rolledOutAt: (r.rolled_out_at as Date).toISOString() } : {}),
});

/** Keeps a config version (idempotent); `rollOut` makes it the running one from now on. */
export async function storeConfig(pool: pg.Pool, c: StoredConfig, o: { rollOut?: boolean } = {}): Promise<void> {
  await pool.query(
    `INSERT INTO configs (version, raw, templates, rolled_out_at) VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END)
     ON CONFLICT (version) DO UPDATE SET rolled_out_at = CASE WHEN $4 THEN now() ELSE configs.rolled_out_at END`,
    [c.version, JSON.stringify(c.raw), JSON.stringify(c.templates), o.rollOut === true],
  );
}

/** The version of the latest rollout, if any (a cheap read: workers ask before each lead's start). */
export async function runningVersion(pool: pg.Pool): Promise<string | undefined> {
  const r = await pool.query(
    'SELECT version FROM configs WHERE rolled_out_at IS NOT NULL ORDER BY rolled_out_at DESC, version LIMIT 1',
  );
  return r.rows[0]?.version;
}

export async function configByVersion(pool: pg.Pool, version: string): Promise<ConfigRow | undefined> {
  const r = await pool.query('SELECT * FROM configs WHERE version = $1', [version]);
  return r.rows[0] ? row(r.rows[0]) : undefined;
}

/** Every kept version, newest first. */
export async function configs(pool: pg.Pool): Promise<ConfigRow[]> {
  const r = await pool.query('SELECT * FROM configs ORDER BY rolled_out_at DESC NULLS LAST, created_at DESC');
  return r.rows.map(row);
}
