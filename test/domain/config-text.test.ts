/** parseConfigText: a config from its YAML text (the console's), with the problems loadConfigFile reports. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, loadConfigFile, parseConfigText } from '../../src/config-file.js';
import { DEFAULT_FILE, problemAt, type Problem, rawDefault } from '../helpers/config-problems.js';

// Run from the repository root (as `npm test` does): relative template folders are read from the cwd.

function problemsOfText(text: string): Problem[] {
  try {
    parseConfigText(text, 'console.yaml', process.cwd());
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    assert.equal(err.file, 'console.yaml');
    return err.problems;
  }
  return [];
}

describe('parseConfigText', () => {
  it('reports a YAML syntax error on its line', () => {
    const problems = problemsOfText('timeouts:\n  mqlStaleAfter: 30d\nscoring: { models: [\n');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.path, /^line \d+$/);
    // The same problem a file with that text gets.
    const dup = readFileSync(DEFAULT_FILE, 'utf8') + '\ntimeouts: { mqlStaleAfter: 1d }\n';
    assert.match(problemsOfText(dup)[0]!.path, /^line \d+$/);
  });

  it('lists every schema problem with its path', () => {
    const raw = rawDefault();
    raw.scoring.thresholds.mql = 'forty';
    raw.timeouts.salesEscalations = -1;
    const problems = problemsOfText(stringify(raw));
    problemAt(problems, 'scoring.thresholds.mql', /expected number/);
    problemAt(problems, 'timeouts.salesEscalations');
  });

  it('gives the default config the version loadConfigFile gives its file', () => {
    const fromText = parseConfigText(readFileSync(DEFAULT_FILE, 'utf8'), DEFAULT_FILE, process.cwd());
    const fromFile = loadConfigFile(DEFAULT_FILE);
    assert.equal(fromText.version, fromFile.version);
    assert.deepEqual(fromText.config, fromFile.config);
    assert.equal(fromText.file, DEFAULT_FILE);
  });
});
