import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Config, configSchema, WEEKDAYS } from '../../src/domain/config.js';
import { nextInWindow, nextSendSlot, nextUnderCap, pruneSent, timeZoneFor } from '../../src/domain/schedule.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const WEEK = 7 * DAY;
const iso = (s: string) => Date.parse(s);

function makeConfig(email: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    scoring: { thresholds: { mql: 40, sql: 75 }, behavior: { page_view: { points: 1 } } },
    timeouts: { mqlStaleAfter: '30d', salesAcceptWithin: '48h', dormantAfter: '180d' },
    routing: [{ owners: ['team@sales.example'] }],
    email: { from: 'Acme <m@acme.example>', defaultTimezone: 'America/New_York', ...email },
  });
}

const weekdays = makeConfig({ sendWindow: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' } });
const everyDay = makeConfig({ sendWindow: { days: [...WEEKDAYS], from: '09:00', to: '17:00' } });
const noWindow = makeConfig();

/** Local weekday and minutes of `t` in `tz`, independently of the module under test. */
const formatters = new Map<string, Intl.DateTimeFormat>();
function local(t: number, tz: string): { weekday: string; minutes: number; text: string } {
  let f = formatters.get(tz);
  if (!f)
    formatters.set(
      tz,
      (f = new Intl.DateTimeFormat('en-GB', {
        timeZone: tz,
        weekday: 'short',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      })),
    );
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  return {
    weekday: p.weekday!.toLowerCase(),
    minutes: Number(p.hour) * 60 + Number(p.minute),
    text: f.format(new Date(t)),
  };
}

function inWindow(t: number, config: Config, tz: string): boolean {
  const w = config.email.sendWindow;
  if (!w) return true;
  const { weekday, minutes } = local(t, tz);
  const hm = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3));
  return (w.days as string[]).includes(weekday) && minutes >= hm(w.from) && minutes < hm(w.to);
}

describe('timeZoneFor', () => {
  const config = makeConfig();
  it('uses the profile time zone first', () => {
    assert.equal(timeZoneFor({ timezone: 'Asia/Tokyo', country: 'DE' }, config), 'Asia/Tokyo');
  });
  it('then the country', () => {
    assert.equal(timeZoneFor({ country: 'DE' }, config), 'Europe/Berlin');
    assert.equal(timeZoneFor({ country: 'US' }, config), 'America/New_York');
    assert.equal(timeZoneFor({ country: 'GB' }, config), 'Europe/London');
  });
  it('then the configured default', () => {
    assert.equal(timeZoneFor({}, config), 'America/New_York');
    assert.equal(timeZoneFor({ country: 'ZZ' }, config), 'America/New_York');
    assert.equal(timeZoneFor({ country: 'FR' }, makeConfig({ defaultTimezone: 'UTC' })), 'Europe/Paris');
    assert.equal(timeZoneFor({}, makeConfig({ defaultTimezone: 'Asia/Kolkata' })), 'Asia/Kolkata');
  });
});

describe('nextInWindow', () => {
  it('without a window, sends at once', () => {
    const t = iso('2026-01-10T08:00:00Z'); // Saturday 03:00 in New York
    assert.equal(nextInWindow(t, noWindow, 'America/New_York'), t);
  });

  it('a step due Saturday 03:00 New York waits until Monday 09:00 New York', () => {
    const t = iso('2026-01-10T08:00:00Z');
    assert.equal(local(t, 'America/New_York').text, 'Sat 03:00');
    assert.equal(nextInWindow(t, weekdays, 'America/New_York'), iso('2026-01-12T14:00:00Z'));
  });

  it('keeps an instant inside the window', () => {
    const t = iso('2026-01-13T15:27:13.5Z'); // Tuesday 10:27:13.5 New York
    assert.equal(nextInWindow(t, weekdays, 'America/New_York'), t);
    assert.equal(nextInWindow(iso('2026-01-13T14:00:00Z'), weekdays, 'America/New_York'), iso('2026-01-13T14:00:00Z'));
  });

  it('waits for the start of the window on a window day, and for the next day after its end', () => {
    assert.equal(nextInWindow(iso('2026-01-13T12:00:00Z'), weekdays, 'America/New_York'), iso('2026-01-13T14:00:00Z'));
    assert.equal(
      nextInWindow(iso('2026-01-13T13:59:59.999Z'), weekdays, 'America/New_York'),
      iso('2026-01-13T14:00:00Z'),
    );
    assert.equal(
      nextInWindow(iso('2026-01-13T22:00:00Z'), weekdays, 'America/New_York'),
      iso('2026-01-14T14:00:00Z'),
      '17:00 is outside',
    );
    assert.equal(
      nextInWindow(iso('2026-01-16T22:30:00Z'), weekdays, 'America/New_York'),
      iso('2026-01-19T14:00:00Z'),
      'Friday evening',
    );
    assert.equal(
      nextInWindow(iso('2026-01-14T04:30:00Z'), weekdays, 'America/New_York'),
      iso('2026-01-14T14:00:00Z'),
      'Tuesday 23:30 local is Wednesday 04:30 UTC',
    );
  });

  it("depends on the lead's time zone: Europe/Berlin and America/New_York differ", () => {
    const t = iso('2026-01-12T08:30:00Z'); // Monday 09:30 Berlin, 03:30 New York
    assert.equal(nextInWindow(t, weekdays, 'Europe/Berlin'), t);
    assert.equal(nextInWindow(t, weekdays, 'America/New_York'), iso('2026-01-12T14:00:00Z'));
    const evening = iso('2026-01-12T17:00:00Z'); // Monday 18:00 Berlin, 12:00 New York
    assert.equal(nextInWindow(evening, weekdays, 'Europe/Berlin'), iso('2026-01-13T08:00:00Z'));
    assert.equal(nextInWindow(evening, weekdays, 'America/New_York'), evening);
    assert.equal(nextInWindow(iso('2026-01-12T00:00:00Z'), weekdays, 'Asia/Kolkata'), iso('2026-01-12T03:30:00Z'));
  });

  it('follows DST: the weeks the clocks change in the US and in Europe', () => {
    // US spring forward on Sunday 2026-03-08: Monday 09:00 is 13:00Z (EDT), not 14:00Z.
    assert.equal(nextInWindow(iso('2026-03-07T08:00:00Z'), weekdays, 'America/New_York'), iso('2026-03-09T13:00:00Z'));
    assert.equal(nextInWindow(iso('2026-03-06T22:30:00Z'), weekdays, 'America/New_York'), iso('2026-03-09T13:00:00Z'));
    // Between the US and the EU change, New York is 5 hours behind Berlin, not 6.
    assert.equal(nextInWindow(iso('2026-03-16T07:00:00Z'), weekdays, 'Europe/Berlin'), iso('2026-03-16T08:00:00Z'));
    assert.equal(nextInWindow(iso('2026-03-16T07:00:00Z'), weekdays, 'America/New_York'), iso('2026-03-16T13:00:00Z'));
    // EU spring forward on Sunday 2026-03-29, fall back on 2026-10-25; US fall back on 2026-11-01.
    assert.equal(nextInWindow(iso('2026-03-27T17:00:00Z'), weekdays, 'Europe/Berlin'), iso('2026-03-30T07:00:00Z'));
    assert.equal(nextInWindow(iso('2026-10-23T16:00:00Z'), weekdays, 'Europe/Berlin'), iso('2026-10-26T08:00:00Z'));
    assert.equal(nextInWindow(iso('2026-10-30T22:00:00Z'), weekdays, 'America/New_York'), iso('2026-11-02T14:00:00Z'));
  });

  it('follows DST on the day the clocks change', () => {
    // Saturday evening before a change; the window includes Sunday, so the answer is Sunday 09:00 local.
    assert.equal(nextInWindow(iso('2026-03-07T23:00:00Z'), everyDay, 'America/New_York'), iso('2026-03-08T13:00:00Z'));
    assert.equal(nextInWindow(iso('2026-03-28T18:00:00Z'), everyDay, 'Europe/Berlin'), iso('2026-03-29T07:00:00Z'));
    assert.equal(nextInWindow(iso('2026-10-24T18:00:00Z'), everyDay, 'Europe/Berlin'), iso('2026-10-25T08:00:00Z'));
    assert.equal(nextInWindow(iso('2026-10-31T23:00:00Z'), everyDay, 'America/New_York'), iso('2026-11-01T14:00:00Z'));
    // Southern hemisphere: Sydney goes back on Sunday 2026-04-05 and forward on Sunday 2026-10-04.
    assert.equal(nextInWindow(iso('2026-04-04T10:00:00Z'), everyDay, 'Australia/Sydney'), iso('2026-04-04T23:00:00Z'));
    assert.equal(nextInWindow(iso('2026-10-03T10:00:00Z'), everyDay, 'Australia/Sydney'), iso('2026-10-03T22:00:00Z'));
  });

  it('a window that starts inside the spring-forward gap opens when the clocks have jumped', () => {
    const night = makeConfig({ sendWindow: { days: ['sun'], from: '02:30', to: '05:00' } });
    // 02:30 does not exist in New York on 2026-03-08; the first instant in the window is 03:00 EDT (07:00Z).
    const got = nextInWindow(iso('2026-03-08T05:00:00Z'), night, 'America/New_York');
    assert.ok(inWindow(got, night, 'America/New_York'));
    assert.equal(got, iso('2026-03-08T07:00:00Z'));
  });

  const zones = [
    'America/New_York',
    'Europe/Berlin',
    'Asia/Kolkata',
    'Asia/Kathmandu',
    'Australia/Sydney',
    'Pacific/Auckland',
    'America/St_Johns',
    'UTC',
    'America/Sao_Paulo',
  ];
  const windowArb = fc
    .record({
      days: fc.subarray([...WEEKDAYS], { minLength: 1 }),
      from: fc.oneof(fc.integer({ min: 0, max: 23 * 60 + 58 }), fc.integer({ min: 60, max: 3 * 60 })),
      length: fc.integer({ min: 1, max: 24 * 60 }),
    })
    .map(({ days, from, length }) => {
      const to = Math.min(from + length, 23 * 60 + 59);
      const hm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
      return makeConfig({ sendWindow: { days, from: hm(from), to: hm(to) } });
    });
  // Any instant over three years, or one within three days of a DST change in one of the zones.
  const changes = [
    '2026-03-08T07:00:00Z',
    '2026-11-01T06:00:00Z',
    '2026-03-29T01:00:00Z',
    '2026-10-25T01:00:00Z',
    '2026-04-04T16:00:00Z',
    '2026-10-03T16:00:00Z',
    '2026-04-04T14:00:00Z',
    '2026-09-26T14:00:00Z',
    '2026-03-08T05:30:00Z',
  ].map(iso);
  const instantArb = fc.oneof(
    fc.integer({ min: iso('2025-01-01T00:00:00Z'), max: iso('2027-12-31T00:00:00Z') }),
    fc.tuple(fc.constantFrom(...changes), fc.integer({ min: -3 * DAY, max: 3 * DAY })).map(([c, d]) => c + d),
  );

  it('gives the earliest instant at or after t inside the window, in any zone (property)', () => {
    fc.assert(
      fc.property(instantArb, windowArb, fc.constantFrom(...zones), (t, config, tz) => {
        const got = nextInWindow(t, config, tz);
        assert.ok(got >= t, 'not before t');
        assert.ok(got - t <= 8 * DAY, 'within a week and a day');
        assert.ok(
          inWindow(got, config, tz),
          `${new Date(got).toISOString()} (${local(got, tz).text}) is outside the window ${JSON.stringify(config.email.sendWindow)}`,
        );
        // Known limit, left alone: when the clocks go back, a window inside the repeated hour opens a
        // second time that day; nextInWindow answers the next window day instead. Earliest-ness is
        // checked everywhere else.
        const offsetAt = (x: number) =>
          Date.parse(new Date(x).toLocaleString('en-US', { timeZone: tz })) -
          Date.parse(new Date(x).toLocaleString('en-US', { timeZone: 'UTC' }));
        const clocksWentBack = offsetAt(got) < offsetAt(t);
        if (got > t && !clocksWentBack) {
          assert.ok(!inWindow(got - 1, config, tz), 'the instant just before is outside the window (earliest)');
          for (let s = t; s < got; s += 10 * MIN)
            assert.ok(!inWindow(s, config, tz), `${new Date(s).toISOString()} was already in the window`);
        }
      }),
      { numRuns: Number(process.env.FC_WINDOW_RUNS ?? 300) },
    );
  });
});

describe('nextUnderCap', () => {
  const capped = makeConfig({ frequencyCap: { perDay: 1, perWeek: 3 } });
  const t0 = iso('2026-01-12T15:00:00Z');

  it('without a cap, sends at once', () => {
    assert.equal(nextUnderCap(t0, [t0 - MIN, t0 - 2 * MIN], noWindow), t0);
  });

  it('defers to a day after the last send when perDay is reached', () => {
    assert.equal(nextUnderCap(t0 + HOUR, [t0], capped), t0 + DAY);
    assert.equal(nextUnderCap(t0 + DAY, [t0], capped), t0 + DAY);
    assert.equal(nextUnderCap(t0 + 2 * DAY, [t0], capped), t0 + 2 * DAY);
  });

  it('defers to a week after the oldest of the week when perWeek is reached', () => {
    const sent = [t0, t0 + DAY, t0 + 2 * DAY];
    assert.equal(nextUnderCap(t0 + 3 * DAY, sent, capped), t0 + WEEK);
    assert.equal(nextUnderCap(t0 + WEEK + HOUR, sent, capped), t0 + WEEK + HOUR);
  });

  it('applies both caps', () => {
    const twoPerDay = makeConfig({ frequencyCap: { perDay: 2, perWeek: 3 } });
    assert.equal(nextUnderCap(t0 + HOUR, [t0, t0 + 30 * MIN], twoPerDay), t0 + DAY);
    assert.equal(nextUnderCap(t0 + 2 * HOUR, [t0, t0 + HOUR], twoPerDay), t0 + DAY);
    assert.equal(nextUnderCap(t0 + DAY + 2 * HOUR, [t0, t0 + HOUR, t0 + DAY + HOUR], twoPerDay), t0 + WEEK);
  });

  it('defers, never drops, and stays under both caps at the earliest such instant (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          perDay: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
          perWeek: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
        }),
        fc.array(fc.integer({ min: 0, max: 14 * DAY }), { maxLength: 25 }),
        fc.integer({ min: 0, max: 14 * DAY }),
        (cap, offsets, at) => {
          const config = makeConfig({ frequencyCap: cap });
          const t = t0 + at;
          const sentAt = offsets.map((o) => t0 + o).filter((s) => s <= t);
          const got = nextUnderCap(t, sentAt, config);
          assert.ok(Number.isFinite(got) && got >= t);
          const under = (x: number) =>
            (!cap.perDay || sentAt.filter((s) => s > x - DAY && s <= x).length < cap.perDay) &&
            (!cap.perWeek || sentAt.filter((s) => s > x - WEEK && s <= x).length < cap.perWeek);
          assert.ok(under(got), 'under the caps');
          if (got > t) assert.ok(!under(got - 1), 'earliest');
        },
      ),
    );
  });
});

describe('nextSendSlot and pruneSent', () => {
  const config = makeConfig({
    sendWindow: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' },
    frequencyCap: { perDay: 1, perWeek: 3 },
  });

  it('a send capped until Friday evening waits for Monday morning', () => {
    const sent = iso('2026-01-16T21:00:00Z'); // Friday 16:00 New York
    const slot = nextSendSlot(iso('2026-01-16T21:30:00Z'), [sent], config, 'America/New_York');
    assert.equal(slot, iso('2026-01-19T14:00:00Z'));
  });

  it('a slot deferred by the window lands under the cap', () => {
    const sent = [iso('2026-01-12T16:00:00Z'), iso('2026-01-13T16:00:00Z'), iso('2026-01-14T16:00:00Z')]; // Mon-Wed 11:00 NY
    const slot = nextSendSlot(iso('2026-01-15T16:00:00Z'), sent, config, 'America/New_York');
    assert.equal(slot, iso('2026-01-19T16:00:00Z'), 'a week after Monday 11:00 is Monday 11:00');
  });

  it('is in the window and under the cap (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10 * DAY }), { maxLength: 8 }),
        fc.integer({ min: 0, max: 10 * DAY }),
        fc.constantFrom('America/New_York', 'Europe/Berlin', 'Asia/Tokyo'),
        (offsets, at, tz) => {
          const base = iso('2026-03-02T00:00:00Z');
          const t = base + at;
          const sentAt = offsets.map((o) => base + o).filter((s) => s <= t);
          const slot = nextSendSlot(t, sentAt, config, tz);
          assert.ok(slot >= t);
          assert.ok(inWindow(slot, config, tz));
          assert.equal(nextUnderCap(slot, sentAt, config), slot);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('pruneSent keeps the sends of the last week', () => {
    const now = iso('2026-01-20T00:00:00Z');
    assert.deepEqual(pruneSent([now - WEEK - 1, now - WEEK, now - WEEK + 1, now - HOUR], now), [
      now - WEEK + 1,
      now - HOUR,
    ]);
  });
});
