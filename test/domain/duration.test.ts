import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { durationMs } from '../../src/domain/config.js';
import { formatDuration, parseDuration } from '../../src/domain/duration.js';

describe('parseDuration', () => {
  it('parses the documented forms into milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2s'), 2_000);
    assert.equal(parseDuration('15m'), 15 * 60_000);
    assert.equal(parseDuration('48h'), 48 * 3_600_000);
    assert.equal(parseDuration('30d'), 30 * 86_400_000);
    assert.equal(parseDuration('2w'), 14 * 86_400_000);
    assert.equal(parseDuration('0s'), 0);
  });

  it('accepts a fraction and surrounding whitespace', () => {
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration(' 3d '), 3 * 86_400_000);
  });

  it('refuses anything else', () => {
    for (const bad of [
      '3 days',
      '3 d',
      '30',
      'd',
      '',
      '-1d',
      '+1d',
      '1y',
      '1D',
      '1H',
      '1.d',
      '.5d',
      '1e3ms',
      '5 m',
      '10sec',
      'forever',
      '1h30m',
    ]) {
      assert.equal(parseDuration(bad), undefined, `${JSON.stringify(bad)} should be refused`);
    }
  });

  it('round-trips through formatDuration for whole units', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom('ms', 's', 'm', 'h', 'd'), (n, unit) => {
        const ms = parseDuration(`${n}${unit}`)!;
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
    );
  });
});

describe('formatDuration', () => {
  it('uses the largest whole unit', () => {
    assert.equal(formatDuration(30 * 86_400_000), '30d');
    assert.equal(formatDuration(48 * 3_600_000), '2d');
    assert.equal(formatDuration(36 * 3_600_000), '36h');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(15 * 60_000), '15m');
    assert.equal(formatDuration(1_500), '1500ms');
    assert.equal(formatDuration(0), '0ms');
  });
});

describe('durationMs (zod)', () => {
  it('yields milliseconds for a good duration', () => {
    assert.equal(durationMs.parse('48h'), 172_800_000);
  });

  it('reports a bad duration with the text it got', () => {
    const r = durationMs.safeParse('3 days');
    assert.equal(r.success, false);
    assert.match(r.error!.issues[0]!.message, /"3 days" is not a duration/);
  });

  it('refuses a number (durations are strings)', () => {
    assert.equal(durationMs.safeParse(3000).success, false);
  });
});
