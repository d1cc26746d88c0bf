/**
 * What the config tests share: the repository's default config as raw YAML to break, and the
 * problems validateConfig reports for a raw config (each with its path).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ConfigError, validateConfig } from '../../src/config-file.js';

export const DEFAULT_FILE = 'config/default.yaml';
export const rawDefault = (): any => parse(readFileSync(DEFAULT_FILE, 'utf8'));

export type Problem = { path: string; message: string };

/** The problems validateConfig finds in `raw` (none: an empty list). */
export function problemsOf(raw: unknown, baseDir = process.cwd()): Problem[] {
  try {
    validateConfig(raw, 'test.yaml', baseDir);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.problems;
  }
  return [];
}

/** The problem at `path` (failing when there is none), its message matching `message`. */
export function problemAt(problems: Problem[], path: string, message?: RegExp): Problem {
  const p = problems.find((x) => x.path === path);
  assert.ok(p, `expected a problem at ${path}, got ${JSON.stringify(problems, null, 1)}`);
  if (message) assert.match(p.message, message);
  return p;
}
