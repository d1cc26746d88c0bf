/**
 * What-if on the ledger (CONTRACT.md §Scoring models): the pure WhatIfRun fed with every config
 * version and every lead's history the ledger keeps. Shared by `leadctl what-if` and the console.
 */
import type pg from 'pg';
import { storedConfig } from '../config-file.js';
import type { Config } from '../domain/config.js';
import { configs } from '../ledger/configs.js';
import { histories } from '../ledger/histories.js';
import { type WhatIf, WhatIfRun } from './what-if.js';

/** Every config version the ledger keeps, validated (a version that no longer validates is left out). */
async function keptConfigs(pool: pg.Pool): Promise<Map<string, Config>> {
  const out = new Map<string, Config>();
  for (const row of await configs(pool)) {
    try {
      out.set(row.version, storedConfig(row).config);
    } catch {
      // reported as "not in the ledger" by the leads that need it
    }
  }
  return out;
}

/** Replays every lead in the ledger under its own configs and under `candidate`, a page of histories at a time. */
export async function whatIfOnLedger(
  pool: pg.Pool,
  candidate: { config: Config; version: string },
  opts: { pageSize?: number; now?: number } = {},
): Promise<WhatIf & { seconds: number }> {
  const started = performance.now();
  const kept = await keptConfigs(pool);
  const run = new WhatIfRun(
    (v) => kept.get(v),
    { config: candidate.config, version: candidate.version },
    opts.now ?? Date.now(),
  );
  for (let after: string | undefined = ''; after !== undefined;) {
    const page = await histories(pool, { after, limit: opts.pageSize ?? 2000 });
    run.add(page);
    after = page.next;
  }
  return { ...run.result(), seconds: (performance.now() - started) / 1000 };
}
