/**
 * The config a process runs: its own LEAD_CONFIG file until a rollout (`leadctl rollout`) stored
 * another in the ledger as the running one; then that one, on every worker and API process alike,
 * until the next rollout. A process keeps its file's version in the ledger too, so what-if can
 * replay a lead under the config it lived with.
 */
import type pg from 'pg';
import { type LoadedConfig, storedConfig } from './config-file.js';
import { configByVersion, runningVersion, storeConfig } from './ledger/configs.js';

/** How long an answer of the ledger stands before a lead's start asks again (a reload always asks). */
const CHECK_EVERY_MS = 1000;

export class RunningConfig {
  private current: LoadedConfig;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private checking?: Promise<LoadedConfig>;
  private readonly known = new Map<string, LoadedConfig>();
  private stored?: Promise<void>;

  constructor(
    readonly file: LoadedConfig,
    private readonly pool: pg.Pool | undefined,
    private readonly log: (line: string) => void = () => {},
    private readonly clock: () => number = Date.now,
  ) {
    this.current = file;
    this.known.set(file.version, file);
  }

  /** The config as last read (no I/O): what templates and a page render with. */
  get loaded(): LoadedConfig {
    return this.current;
  }

  /**
   * The running config: the ledger's latest rollout, read again after CHECK_EVERY_MS (or now,
   * `fresh`). The first call keeps the file's version in the ledger (not as running).
   */
  async latest(fresh = false): Promise<LoadedConfig> {
    if (!this.pool) return this.current;
    this.stored ??= storeConfig(this.pool, storedForm(this.file)).catch((err) => {
      this.stored = undefined; // asked again next time
      throw err;
    });
    await this.stored;
    if (!fresh && this.clock() - this.checkedAt < CHECK_EVERY_MS) return this.current;
    this.checking ??= this.check().finally(() => (this.checking = undefined));
    return this.checking;
  }

  /** A config version by id, from this process or the ledger (what-if replays older ones). */
  async version(version: string): Promise<LoadedConfig | undefined> {
    const mine = this.known.get(version);
    if (mine || !this.pool) return mine;
    const row = await configByVersion(this.pool, version);
    if (!row) return undefined;
    const loaded = storedConfig(row);
    this.known.set(version, loaded);
    return loaded;
  }

  private async check(): Promise<LoadedConfig> {
    const version = (await runningVersion(this.pool!)) ?? this.file.version;
    this.checkedAt = this.clock();
    if (version === this.current.version) return this.current;
    const next = await this.version(version);
    if (!next) throw new Error(`the running config ${version} is not in the ledger's configs`);
    this.log(
      version === this.file.version
        ? `config: running ${version} (${this.file.file})`
        : `config: running ${version}, rolled out with leadctl rollout (the LEAD_CONFIG file ${this.file.file} is ${this.file.version})`,
    );
    this.current = next;
    return next;
  }
}

/** A loaded config in the form the ledger keeps. */
export const storedForm = (c: LoadedConfig) => ({ version: c.version, raw: c.raw, templates: c.templates.sources });
