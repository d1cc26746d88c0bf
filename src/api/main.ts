/**
 * `npm run api`: the HTTP API alone, against the Temporal server in env (TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE). Refuses to start (exit code 2, naming the variable) without API_TOKEN
 * (comma-separated tokens, `scope:token` or bare = admin), LINK_SECRET and PAYLOAD_KEYS; `npm start`
 * passes generated ones. Rate limits from API_RATE_LIMIT and API_WRITE_RATE_LIMIT (src/api/auth.ts).
 */
import { RunningConfig } from '../running-config.js';
import { Client, Connection } from '@temporalio/client';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LeadService } from '../lead-service.js';
import { ConfigError, loadConfigFile } from '../config-file.js';
import { dataConverter, EncryptionCodec, parsePayloadKeys, PayloadKeyError } from '../codec.js';
import { apiSettings, EXIT_CONFIG, requireSecrets, ROOT, SecretError, settings } from '../env.js';
import { LinkSigner } from '../links.js';
import { DatabaseUnreachable, openLedgerDatabase } from '../ledger/database.js';
import { LeadLedger } from '../ledger/ledger.js';
import { DEFAULT_RATE, DEFAULT_WRITE_RATE, parseRate } from './auth.js';
import { parseCorsOrigins } from './codec.js';
import { buildApi } from './server.js';

export const API_TOKEN_FILE = join(ROOT, '.data', 'api-token');

/** API_TOKEN (comma-separated), else the tokens in .data/api-token (one per line or comma-separated). */
export function apiTokens(env: NodeJS.ProcessEnv = process.env, file = API_TOKEN_FILE): string[] {
  const split = (s: string) =>
    s
      .split(/[,\n]/)
      .map((t) => t.trim())
      .filter(Boolean);
  const fromEnv = split(env.API_TOKEN ?? '');
  if (fromEnv.length) return fromEnv;
  if (existsSync(file)) {
    const fromFile = split(readFileSync(file, 'utf8'));
    if (fromFile.length) return fromFile;
  }
  throw new Error(`no API token: set API_TOKEN (comma-separated tokens) or write one into ${file}`);
}

export async function runApi(): Promise<void> {
  const s = settings();
  const secrets = requireSecrets(['LINK_SECRET', 'API_TOKEN', 'PAYLOAD_KEYS']);
  const keys = parsePayloadKeys(secrets.PAYLOAD_KEYS);
  const links = new LinkSigner(secrets.LINK_SECRET, s.publicUrl);
  const api = apiSettings();
  const corsOrigins = parseCorsOrigins(api.corsOrigins);
  const tokens = apiTokens();
  const loaded = loadConfigFile();
  // The ledger (state, search, funnel, timeline): one that cannot be reached stops start-up with
  // one line; one that goes away later makes its reads answer 503 until it is back.
  const database = await openLedgerDatabase(s, (l) => console.log(`[api] ${l}`));
  // Lazy: the API starts (and /healthz answers 503) while Temporal is still coming up.
  const connection = Connection.lazy({ address: s.address });
  const client = new Client({ connection, namespace: s.namespace, dataConverter: dataConverter(keys) });
  // The running config: the file's until a rollout; asked of the ledger again every few seconds.
  const running = new RunningConfig(loaded, database.pool, (l) => console.log(`[api] ${l}`));
  const refresh = () => running.latest(true).catch((err) => console.error(`[api] config: ${(err as Error).message}`));
  await refresh();
  setInterval(refresh, 5000).unref();
  const service = new LeadService(client, s.taskQueue, () => running.loaded.config, new LeadLedger(database.pool));
  const app = buildApi({
    service,
    tokens,
    links,
    logger: api.log,
    codec: { codec: new EncryptionCodec(keys), corsOrigins },
    console: { config: () => running.loaded },
    rateLimit: parseRate(api.rateLimit, DEFAULT_RATE, 'API_RATE_LIMIT') ?? null,
    writeRateLimit: parseRate(api.writeRateLimit, DEFAULT_WRITE_RATE, 'API_WRITE_RATE_LIMIT') ?? null,
    healthCheck: async () => {
      const r = await connection.withDeadline(Date.now() + 3000, () => connection.healthService.check({}));
      return r.status === 1; // SERVING
    },
  });
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    console.log(`[api] ${signal}: closing`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    try {
      await app.close();
      await connection.close();
      await database.close();
    } finally {
      clearTimeout(force);
      process.exit(0);
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  const address = await app.listen({ port: s.apiPort, host: '0.0.0.0' });
  console.log(
    `[api] listening on ${address} (public links ${s.publicUrl}); console ${address.replace('0.0.0.0', 'localhost')}/console; codec server ${address}/codec${corsOrigins.length ? ` for ${corsOrigins.join(', ')}` : ''}; Temporal ${s.address} (${s.namespace}), task queue ${s.taskQueue}; ledger ${database.describe}; config ${loaded.file} version ${loaded.version}`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runApi().catch((err) => {
    if (err instanceof DatabaseUnreachable) {
      console.error(`[api] refusing to start: ${err.message}`);
      process.exit(1);
    }
    const refused =
      err instanceof SecretError ||
      err instanceof PayloadKeyError ||
      (err instanceof Error && /^(LINK_SECRET|CODEC_CORS_ORIGINS)/.test(err.message));
    console.error(
      refused
        ? `[api] refusing to start: ${err.message}`
        : err instanceof ConfigError || err instanceof Error
          ? err.message
          : err,
    );
    process.exit(refused ? EXIT_CONFIG : 1);
  });
}
