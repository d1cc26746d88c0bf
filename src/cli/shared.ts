/**
 * What every leadctl command shares: the global options, the lazy connection to Temporal and the
 * ledger (Context), the action wrapper that turns a command's result or error into an exit code,
 * and the option parsers that refuse bad values as input errors.
 */
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { LeadError, LeadService } from '../lead-service.js';
import { dataConverter, payloadKeysForTools } from '../codec.js';
import { ConfigError, type LoadedConfig, loadConfigFile, validateConfig } from '../config-file.js';
import { ROOT, settings } from '../env.js';
import { type Database, openLedgerDatabase } from '../ledger/database.js';
import { LeadLedger } from '../ledger/ledger.js';
import { ImportFatalError, ImportSetupError, parseDate } from './import.js';

export interface GlobalOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  config?: string;
  json?: boolean;
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  stderrIsTTY: boolean;
}
export const defaultIo: Io = {
  out: (s) => void process.stdout.write(`${s}\n`),
  err: (s) => void process.stderr.write(`${s}\n`),
  stderrIsTTY: !!process.stderr.isTTY,
};

/** An error the user caused on the command line: exit 2 like a refused input, with the field named. */
export class UsageError extends LeadError {
  constructor(field: string, message: string) {
    super(400, 'invalid_input', `${field}: ${message}`, [{ path: field, message }]);
  }
}

/** The config: --config / LEAD_CONFIG, else ./config/default.yaml, else the one in this repo. */
function loadConfig(path?: string): LoadedConfig {
  if (path) return loadConfigFile(resolve(path));
  const local = resolve('config/default.yaml');
  if (existsSync(local)) return loadConfigFile(local);
  const file = join(ROOT, 'config', 'default.yaml');
  return validateConfig(parseYaml(readFileSync(file, 'utf8')), file, ROOT);
}

/**
 * The service on a lazy connection: commands validate their input first (no server needed, so
 * bad input is refused the same with Temporal down), then `connect()` before the first call.
 */
export class Context {
  private connection?: Connection;
  private connecting?: Promise<void>;
  private svc?: LeadService;
  private loaded?: LoadedConfig;
  private database?: Database;
  private opening?: Promise<void>;
  private leadLedger?: LeadLedger;
  constructor(readonly g: GlobalOptions) {}

  config(): LoadedConfig {
    return (this.loaded ??= loadConfig(this.g.config));
  }

  get service(): LeadService {
    if (this.svc) return this.svc;
    const config = this.config().config;
    this.connection = Connection.lazy({ address: this.g.address, connectTimeout: '5s' });
    const client = new Client({
      connection: this.connection,
      namespace: this.g.namespace,
      dataConverter: dataConverter(payloadKeysForTools()),
    });
    return (this.svc = new LeadService(client, this.g.taskQueue, config));
  }

  /** The service, connected; a clear message when Temporal cannot be reached. */
  async connect(o: { ledger?: boolean } = {}): Promise<LeadService> {
    const svc = this.service;
    this.connecting ??= this.connection!.ensureConnected().catch((err) => {
      const reason = (err as Error).message;
      throw new Error(`cannot reach Temporal at ${this.g.address}: ${reason} (set --address or TEMPORAL_ADDRESS)`);
    });
    await this.connecting;
    if (o.ledger === false) return svc;
    return this.ledgerOnly();
  }

  /**
   * The service with its ledger (state, search, funnel, timeline, imports): DATABASE_URL, else
   * the embedded database `npm start` shares under DATA_DIR. Without connect(), no Temporal
   * connection: searches, the funnel and timelines read the ledger alone, so they answer while
   * Temporal is away.
   */
  async ledgerOnly(): Promise<LeadService> {
    const svc = this.service;
    svc.ledger = await this.ledger();
    return svc;
  }

  /** The ledger alone, without the service (so without payload keys): for commands that only read the ledger. */
  async ledger(): Promise<LeadLedger> {
    this.opening ??= (async () => {
      this.database = await openLedgerDatabase(settings());
      this.leadLedger = new LeadLedger(this.database.pool);
    })();
    await this.opening;
    return this.leadLedger!;
  }

  async close() {
    await this.connection?.close().catch(() => undefined);
    await this.database?.close().catch(() => undefined);
  }
}

/**
 * Wraps a command's body: a fresh Context from the global options, the body's result (a number,
 * else 0) as the exit code, an error reported as every command reports it, the connection closed.
 */
export type Action = <A extends unknown[]>(
  fn: (ctx: Context, json: boolean, ...args: A) => Promise<number | void>,
) => (...args: A) => Promise<void>;

/** What a command module gets to register its command: where to print and how to wrap its action. */
export interface Cli {
  io: Io;
  action: Action;
}

export function makeAction(io: Io, setExit: (code: number) => void): Action {
  return <A extends unknown[]>(fn: (ctx: Context, json: boolean, ...args: A) => Promise<number | void>) =>
    async (...args: A) => {
      const cmd = args[args.length - 1] as Command;
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const ctx = new Context(opts);
      try {
        const code = await fn(ctx, !!opts.json, ...args);
        setExit(typeof code === 'number' ? code : 0);
      } catch (err) {
        setExit(report(err, !!opts.json, io));
      } finally {
        await ctx.close();
      }
    };
}

/** Prints an error the way every command does and returns the exit code. */
export function report(err: unknown, json: boolean, io: Io): number {
  if (err instanceof LeadError) {
    if (json) {
      const issues = err.issues ? { issues: err.issues } : {};
      io.err(JSON.stringify({ error: { code: err.code, message: err.message, ...issues } }));
    } else {
      io.err(`error: ${err.message}`);
      // Each issue on its own line (field: reason) when the message does not already say it.
      for (const i of err.issues ?? []) {
        if (err.issues!.length > 1 || !err.message.includes(`${i.path}: `)) io.err(`  ${i.path}: ${i.message}`);
      }
    }
    return 2;
  }
  const message =
    err instanceof ConfigError || err instanceof ImportSetupError || err instanceof ImportFatalError
      ? err.message
      : err instanceof Error
        ? err.message
        : String(err);
  if (json) io.err(JSON.stringify({ error: { code: err instanceof ConfigError ? 'bad_config' : 'error', message } }));
  else io.err(`error: ${message}`);
  if (settings().leadctlDebug && err instanceof Error) io.err(err.stack ?? '');
  return 1;
}

// ---- option parsers ----------------------------------------------------------------------------

/** A repeatable option's values, in order. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export function intOption(field: string, min = 0) {
  return (value: string) => {
    if (!/^-?\d+$/.test(value.trim()) || Number(value) < min) {
      throw new UsageError(field, `expected a whole number${min ? ` of at least ${min}` : ''}, got "${value}"`);
    }
    return Number(value);
  };
}

export function isoOption(field: string) {
  return (value: string) => {
    const r = parseDate(value, 'iso');
    if ('error' in r) throw new UsageError(field, r.error);
    return r.value;
  };
}

/**
 * A command's leadId argument, declared optional (`[leadId]`) so that a missing one is the usage
 * refused as input (exit 2, the command's usage on stderr) rather than commander's exit 1.
 */
export function leadIdArgument(io: Io, cmd: Command, leadId: string | undefined): string | undefined {
  if (leadId !== undefined && leadId !== '') return leadId;
  io.err(`error: missing required argument 'leadId'\n${cmd.helpInformation().replace(/\n$/, '')}`);
  return undefined;
}
