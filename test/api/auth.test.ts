/** Token scopes, rate syntax and the write budget (src/api/auth.ts); no server needed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allows, Budget, DEFAULT_RATE, parseRate, parseTokens, tokenChecker } from '../../src/api/auth.js';

describe('API tokens', () => {
  it('reads scope:token entries; a bare token is admin; an unknown scope stops start-up', () => {
    const tokens = parseTokens(['ingest:aaa', ' read:bbb ', 'ccc', '']);
    assert.deepEqual(
      tokens.map((t) => t.scope),
      ['ingest', 'read', 'admin'],
    );
    assert.ok(
      tokens.every((t) => /^[a-z]+:[0-9a-f]{8}$/.test(t.id)),
      'ids name the scope and a digest prefix, not the token',
    );
    const check = tokenChecker(tokens);
    assert.equal(check('Bearer aaa')?.scope, 'ingest');
    assert.equal(check('Bearer ccc')?.scope, 'admin');
    assert.equal(check('Bearer ingest:aaa'), undefined, 'the scope prefix is not part of the token');
    assert.equal(check('Basic aaa'), undefined);
    assert.throws(() => parseTokens(['reader:xyz']), /unknown scope "reader"/);
    assert.throws(() => parseTokens(['sales:']), /no token/);
    assert.throws(() => parseTokens([' ']), /at least one API token/);
  });

  it('lets admin do everything and every other scope only its own', () => {
    for (const need of ['ingest', 'sales', 'read', 'admin'] as const) {
      assert.ok(allows('admin', need));
      for (const have of ['ingest', 'sales', 'read'] as const) assert.equal(allows(have, need), have === need);
    }
  });
});

describe('rate limits', () => {
  it('parses N/unit, off, and refuses anything else naming the variable', () => {
    assert.deepEqual(parseRate('600/min', undefined, 'X'), { max: 600, windowMs: 60_000 });
    assert.deepEqual(parseRate('20/s', undefined, 'X'), { max: 20, windowMs: 1000 });
    assert.deepEqual(parseRate('100/15min', undefined, 'X'), { max: 100, windowMs: 900_000 });
    assert.deepEqual(parseRate('10000/hour', undefined, 'X'), { max: 10_000, windowMs: 3_600_000 });
    assert.equal(parseRate('off', DEFAULT_RATE, 'X'), undefined);
    assert.equal(parseRate(undefined, DEFAULT_RATE, 'X'), DEFAULT_RATE);
    for (const bad of ['fast', '600', '600/fortnight', '-1/min', '0/min'])
      assert.throws(() => parseRate(bad, undefined, 'API_RATE_LIMIT'), /API_RATE_LIMIT/, bad);
  });

  it('spends a batch whole or not at all, per key, and resets with the window', () => {
    let now = 0;
    const b = new Budget({ max: 600, windowMs: 60_000 }, () => now);
    assert.deepEqual(b.take('a', 500), { ok: true });
    assert.deepEqual(b.take('a', 500), { ok: false, retryAfterS: 60 });
    assert.deepEqual(b.take('a', 100), { ok: true });
    assert.deepEqual(b.take('b', 600), { ok: true }, 'another token has its own budget');
    now = 45_000;
    assert.deepEqual(b.take('a', 1), { ok: false, retryAfterS: 15 });
    now = 60_000;
    assert.deepEqual(b.take('a', 600), { ok: true });
  });
});
