/**
 * The config's `segment` section (src/domain/config.ts): event names map to event types the config
 * scores (or built-in ones), trait targets are profile field names, and every problem is reported
 * with its path beside the rest of the file's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config-file.js';
import { problemsOf, rawDefault } from '../helpers/config-problems.js';

describe('config segment', () => {
  it('takes event names mapped to scored or built-in types, and a trait map, with defaults', () => {
    const raw = rawDefault();
    raw.segment = {
      events: { 'Demo Requested': 'demo_request', Unsubscribed: 'unsubscribe' },
      traits: { role: 'jobTitle' },
    };
    assert.deepEqual(problemsOf(raw), []);
    const loaded = validateConfig(raw, 'test.yaml', process.cwd());
    assert.equal(loaded.config.segment?.writeKeysEnv, 'SEGMENT_WRITE_KEYS');
    assert.equal(loaded.config.segment?.events['Demo Requested'], 'demo_request');
  });

  it('reports an event type the config does not score, a bad type, a bad field and a bad env name, each at its path', () => {
    const raw = rawDefault();
    raw.timeouts.mqlStaleAfter = 'soon';
    raw.segment = {
      writeKeysEnv: 'not-an-env',
      events: { 'Demo Requested': 'demo_requested', Weird: 'Not A Type' },
      traits: { title: 'job title' },
      extra: 1,
    };
    const problems = problemsOf(raw);
    const at = (path: string, re?: RegExp) => {
      const p = problems.find((x) => x.path === path);
      assert.ok(p, `a problem at ${path}: ${JSON.stringify(problems)}`);
      if (re) assert.match(p.message, re);
    };
    at('segment.events.Demo Requested', /does not score.*demo_request/);
    at('segment.events.Weird', /event type/);
    at('segment.traits.title', /profile field name/);
    at('segment.writeKeysEnv', /environment variable/);
    at('timeouts.mqlStaleAfter');
    assert.ok(
      problems.some((p) => p.path.startsWith('segment') && /extra/.test(p.message + p.path)),
      JSON.stringify(problems),
    );
  });
});
