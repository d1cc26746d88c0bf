/**
 * Erasure and export in the ledger (migrations/1796500000000_erasure.sql; CONTRACT.md
 * "Integrations": `DELETE /v1/leads/:leadId`, `GET /v1/leads/:leadId/export`).
 *
 * What stays after an erasure is keyed by HMAC-SHA256 under a random per-installation salt (the
 * `ledger_settings` row `erasure_salt`, made on first use): the erased lead id (`erasures`) and the
 * address (a `suppressions` row `hmac-sha256:<hex>`). Neither the id nor the address is stored.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type pg from 'pg';

const SALT_KEY = 'erasure_salt';
/** As src/ledger/ledger.ts normalizeAddress (not imported: that module imports this one). */
const normalizeAddress = (address: string) => address.trim().toLowerCase();
/** The prefix of a suppression entry that holds a hashed address (an address never starts so). */
export const HASHED_PREFIX = 'hmac-sha256:';
/** The reason a hashed entry carries. */
export const ERASED_REASON = 'erased';

/** The ledger's tables that hold rows keyed by lead id (webhook_attempts goes with its deliveries). */
const LEAD_TABLES = [
  'lead_events',
  'lead_profile_changes',
  'lead_transitions',
  'lead_outcomes',
  'mails',
  'webhook_deliveries',
  'leads',
] as const;

const salts = new WeakMap<pg.Pool, Promise<Buffer>>();

/** The installation's salt: read, or made once (concurrent first uses agree: the first insert wins). */
export function erasureSalt(pool: pg.Pool): Promise<Buffer> {
  let s = salts.get(pool);
  if (!s) {
    s = (async () => {
      await pool.query('INSERT INTO ledger_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
        SALT_KEY,
        randomBytes(32).toString('base64'),
      ]);
      const r = await pool.query('SELECT value FROM ledger_settings WHERE key = $1', [SALT_KEY]);
      return Buffer.from(r.rows[0].value as string, 'base64');
    })();
    s.catch(() => salts.delete(pool));
    salts.set(pool, s);
  }
  return s;
}

const hmac = (salt: Buffer, what: string) => createHmac('sha256', salt).update(what).digest('hex');

/** The suppression key of an address: `hmac-sha256:<hex>` of the normalized address. */
export async function hashedAddress(pool: pg.Pool, address: string): Promise<string> {
  return HASHED_PREFIX + hmac(await erasureSalt(pool), `address:${normalizeAddress(address)}`);
}

async function leadHash(pool: pg.Pool, leadId: string): Promise<string> {
  return hmac(await erasureSalt(pool), `lead:${leadId}`);
}

/** When the lead id was erased, if it was (and no new lead with consent has taken it since). */
export async function erasedAt(pool: pg.Pool, leadId: string): Promise<string | undefined> {
  const r = await pool.query('SELECT erased_at FROM erasures WHERE lead_hash = $1', [await leadHash(pool, leadId)]);
  return r.rows[0] ? (r.rows[0].erased_at as Date).toISOString() : undefined;
}

/** A new lead with consent takes the id again: it is no longer an erased one. */
export async function forgetErasure(pool: pg.Pool, leadId: string): Promise<void> {
  await pool.query('DELETE FROM erasures WHERE lead_hash = $1', [await leadHash(pool, leadId)]);
}

/**
 * Records the erasure before anything is deleted (so that a late event arriving meanwhile is
 * refused) and suppresses each address by its hash only; idempotent.
 */
export async function recordErasure(pool: pg.Pool, leadId: string, addresses: readonly string[]): Promise<void> {
  await pool.query('INSERT INTO erasures (lead_hash) VALUES ($1) ON CONFLICT (lead_hash) DO NOTHING', [
    await leadHash(pool, leadId),
  ]);
  for (const a of addresses) {
    await pool.query('INSERT INTO suppressions (address, reason) VALUES ($1, $2) ON CONFLICT (address) DO NOTHING', [
      await hashedAddress(pool, a),
      ERASED_REASON,
    ]);
  }
}

/** Every address the ledger holds for the lead: its profile's, its mails' recipients, its suppressions'. */
export async function addressesOf(pool: pg.Pool, leadId: string): Promise<string[]> {
  const r = await pool.query(
    `SELECT state->'profile'->>'email' AS a FROM leads WHERE lead_id = $1
     UNION SELECT recipient FROM mails WHERE lead_id = $1
     UNION SELECT address FROM suppressions WHERE lead_id = $1`,
    [leadId],
  );
  const found = r.rows.map((x) => x.a as string | null).filter((a): a is string => !!a && !a.startsWith(HASHED_PREFIX));
  return [...new Set(found.map(normalizeAddress))];
}

/**
 * Deletes every row of the lead and the plain entries of its addresses, in one transaction;
 * returns how many rows went. A second run finds nothing and deletes nothing.
 */
export async function deleteLeadRows(pool: pg.Pool, leadId: string, addresses: readonly string[]): Promise<number> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    let n = 0;
    for (const table of LEAD_TABLES) {
      n += (await c.query(`DELETE FROM ${table} WHERE lead_id = $1`, [leadId])).rowCount ?? 0;
    }
    const plain = addresses.map(normalizeAddress);
    const r = await c.query(
      `DELETE FROM suppressions WHERE lead_id = $1 OR (address = ANY($2::text[]) AND address NOT LIKE '${HASHED_PREFIX}%')`,
      [leadId, plain],
    );
    n += r.rowCount ?? 0;
    // A hashed entry keeps nothing of the lead (its lead_id was never set); a plain one of another lead
    // for the same address is gone above: the address is suppressed by its hash alone.
    await c.query('COMMIT');
    return n;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** Everything the ledger holds about the lead (export): its row, events, profile changes, transitions, outcomes, mails, webhook deliveries and attempts, suppressions of its addresses. */
export interface LedgerExport {
  lead: Record<string, unknown> | null;
  events: Record<string, unknown>[];
  profileChanges: Record<string, unknown>[];
  transitions: Record<string, unknown>[];
  outcomes: Record<string, unknown>[];
  mails: Record<string, unknown>[];
  webhookDeliveries: Record<string, unknown>[];
  webhookAttempts: Record<string, unknown>[];
  suppressions: Record<string, unknown>[];
}

/** Rows as JSON objects with camelCase keys and ISO dates. */
const camel = (row: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k.replace(/_([a-z])/g, (_m, ch: string) => ch.toUpperCase()),
      v instanceof Date ? v.toISOString() : v,
    ]),
  );

export async function exportLeadRows(pool: pg.Pool, leadId: string): Promise<LedgerExport> {
  const rows = async (sql: string, params: unknown[] = [leadId]) => (await pool.query(sql, params)).rows.map(camel);
  const addresses = await addressesOf(pool, leadId);
  const hashed = await Promise.all(addresses.map((a) => hashedAddress(pool, a)));
  const lead = await rows('SELECT * FROM leads WHERE lead_id = $1');
  return {
    lead: lead[0] ?? null,
    events: await rows('SELECT * FROM lead_events WHERE lead_id = $1 ORDER BY applied_at NULLS FIRST, occurred_at'),
    profileChanges: await rows('SELECT * FROM lead_profile_changes WHERE lead_id = $1 ORDER BY applied_at, seq'),
    transitions: await rows('SELECT * FROM lead_transitions WHERE lead_id = $1 ORDER BY at'),
    outcomes: await rows('SELECT * FROM lead_outcomes WHERE lead_id = $1 ORDER BY occurred_at'),
    mails: await rows('SELECT * FROM mails WHERE lead_id = $1 ORDER BY updated_at, message_id'),
    webhookDeliveries: await rows('SELECT * FROM webhook_deliveries WHERE lead_id = $1 ORDER BY seq'),
    webhookAttempts: await rows(
      `SELECT a.* FROM webhook_attempts a JOIN webhook_deliveries d USING (endpoint_id, webhook_id)
        WHERE d.lead_id = $1 ORDER BY d.seq, a.attempt`,
    ),
    suppressions: await rows(
      'SELECT * FROM suppressions WHERE lead_id = $1 OR address = ANY($2::text[]) ORDER BY created_at, address',
      [leadId, [...addresses, ...hashed]],
    ),
  };
}
