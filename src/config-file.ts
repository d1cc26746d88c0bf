/** Loads the YAML configuration (env LEAD_CONFIG, default config/default.yaml) and its templates. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse, YAMLParseError } from 'yaml';
import { type Config, configSchema } from './domain/config.js';
import { loadTemplates, type Templates, templatesFromSources } from './templates.js';
import { TEMPLATE_ID_RE } from './domain/syntax.js';
import { settings } from './env.js';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: { path: string; message: string }[],
  ) {
    super(`invalid configuration ${file}:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  file: string;
  config: Config;
  /** A short hash of the validated config and templates: which version a lead scores with. */
  version: string;
  templates: Templates;
  /** The config as the file holds it (before defaults): what a rollout stores in the ledger. */
  raw: unknown;
}

/** A config as the ledger keeps it (CONTRACT.md §Scoring models, rollout): its file form and its templates. */
export interface StoredConfig {
  version: string;
  raw: unknown;
  templates: Templates['sources'];
}

export function defaultConfigPath(): string {
  return settings().configPath;
}

/** Validates a parsed config object (and, given a base folder, its templates). Throws ConfigError listing every problem. */
export function validateConfig(raw: unknown, file: string, baseDir = dirname(file)): LoadedConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    // Report every problem at once: the templates that the (invalid) file names are checked too.
    const problems = parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.') || '(root)',
      message: i.message,
    }));
    const reported = new Set(problems.map((p) => p.path));
    const templateProblems = loadTemplates(
      templatesDir(rawTemplatesFolder(raw), baseDir),
      rawRequiredTemplates(raw),
    ).problems;
    throw new ConfigError(file, [...problems, ...templateProblems.filter((p) => !reported.has(p.path))]);
  }
  const config = parsed.data;
  const { templates, problems } = loadTemplates(
    templatesDir(config.email.templates, baseDir),
    requiredTemplates(config),
  );
  if (problems.length) throw new ConfigError(file, problems);
  return { file, config, version: versionOf(config, templates), templates, raw };
}

/**
 * The version: a hash of the validated config and its templates in canonical JSON (keys sorted),
 * so that the same config read back from the ledger (jsonb keeps its own key order) hashes the same.
 * Webhook endpoints are left out: they change where changes go, not how a lead is scored.
 */
const versionOf = ({ webhooks: _webhooks, ...config }: Config, templates: Templates) =>
  createHash('sha256')
    .update(canonicalJson({ config, templates: templates.sources }))
    .digest('hex')
    .slice(0, 12);

/** JSON with every object's keys in sorted order (arrays keep theirs); undefined values left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** A config the ledger keeps (a rollout's), validated again; its version must come out the same. */
export function storedConfig(stored: StoredConfig): LoadedConfig {
  const file = `ledger:configs/${stored.version}`;
  const parsed = configSchema.safeParse(stored.raw);
  if (!parsed.success)
    throw new ConfigError(
      file,
      parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message })),
    );
  const templates = templatesFromSources(stored.templates);
  const version = versionOf(parsed.data, templates);
  if (version !== stored.version)
    throw new ConfigError(file, [
      { path: '(version)', message: `validates to version ${version}, not ${stored.version}` },
    ]);
  return { file, config: parsed.data, version, templates, raw: stored.raw };
}

function requiredTemplates(config: Config): { id: string; path: string }[] {
  return [
    { id: 'handoff', path: 'email.templates' },
    ...config.nurture.tracks.flatMap((t, i) =>
      t.steps.map((s, j) => ({ id: s.template, path: `nurture.tracks.${i}.steps.${j}.template` })),
    ),
  ];
}

const templatesDir = (folder: string, baseDir: string) => (isAbsolute(folder) ? folder : resolve(baseDir, folder));

/** The template folder of a config that failed validation (its default when unusable). */
function rawTemplatesFolder(raw: unknown): string {
  const folder = (raw as { email?: { templates?: unknown } } | null)?.email?.templates;
  return typeof folder === 'string' ? folder : 'templates/';
}

/** The templates that a config which failed validation names, where it names them well enough to look. */
function rawRequiredTemplates(raw: unknown): { id: string; path: string }[] {
  const tracks = (raw as { nurture?: { tracks?: unknown } } | null)?.nurture?.tracks;
  const required = [{ id: 'handoff', path: 'email.templates' }];
  if (!Array.isArray(tracks)) return required;
  tracks.forEach((t: { steps?: unknown } | null, i) => {
    if (!Array.isArray(t?.steps)) return;
    t.steps.forEach((s: { template?: unknown } | null, j) => {
      if (typeof s?.template === 'string' && TEMPLATE_ID_RE.test(s.template)) {
        required.push({ id: s.template, path: `nurture.tracks.${i}.steps.${j}.template` });
      }
    });
  });
  return required;
}

/**
 * A config from its YAML text (a file's, or one sent to the console): `name` names it in problems,
 * relative template folders are read from `baseDir`. Throws ConfigError listing every problem.
 */
export function parseConfigText(text: string, name: string, baseDir: string): LoadedConfig {
  let raw: unknown;
  try {
    raw = parse(text, { prettyErrors: true });
  } catch (err) {
    throw yamlError(name, err);
  }
  return validateConfig(raw, name, baseDir);
}

/** A YAML error as a problem on its line (a read error, with no line, on the file). */
function yamlError(file: string, err: unknown): ConfigError {
  const e = err as YAMLParseError;
  return new ConfigError(file, [{ path: e.linePos ? `line ${e.linePos[0].line}` : '(file)', message: e.message }]);
}

export function loadConfigFile(file = defaultConfigPath()): LoadedConfig {
  if (!existsSync(file))
    throw new ConfigError(file, [{ path: '(file)', message: 'not found (set LEAD_CONFIG to the config file)' }]);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw yamlError(file, err);
  }
  // Relative template folders are read from the working directory, like every other path the tools take.
  return parseConfigText(text, file, process.cwd());
}
