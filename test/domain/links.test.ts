import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatEpisode, parseEpisode as episodeOf } from '../../src/domain/episode.js';
import { LINK_PURPOSES, LINK_TTL, type LinkPurpose, LinkSigner, salesLinkStatus } from '../../src/links.js';

const SECRET = 'a-test-secret-of-some-length';
const BASE = 'https://mail.acme.example';
const NOW = Date.parse('2026-01-05T15:00:00Z');
const DAY = 86_400_000;

const signer = new LinkSigner(SECRET, BASE);
const tokenOf = (url: string) => new URL(url).searchParams.get('t')!;
const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8'));

describe('LinkSigner', () => {
  it('refuses a short secret', () => {
    assert.throws(() => new LinkSigner('short', BASE), /at least 16 characters/);
  });

  it('builds a URL per purpose that verifies for that purpose', () => {
    for (const purpose of LINK_PURPOSES) {
      const url = signer.url(purpose, 'lead-42', NOW, { m: 'welcome:1' });
      assert.ok(url.startsWith(`${BASE}/l/${purpose}?t=`), url);
      const r = signer.verify(tokenOf(url), purpose, NOW + DAY);
      assert.deepEqual(r, {
        ok: true,
        payload: { l: 'lead-42', p: purpose, e: NOW / 1000 + LINK_TTL[purpose] * 86_400, m: 'welcome:1' },
      });
    }
  });

  it('carries the click target', () => {
    const url = signer.url('click', 'lead-42', NOW, { m: 'guide:2', u: 'https://acme.example/guide?x=1&y=2' });
    const r = signer.verify(tokenOf(url), 'click', NOW);
    assert.ok(r.ok);
    assert.equal(r.payload.u, 'https://acme.example/guide?x=1&y=2');
  });

  it('round-trips any lead id, purpose and message ref (property)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9._:@+-]{1,128}$/),
        fc.constantFrom(...LINK_PURPOSES),
        fc.option(fc.string({ minLength: 1 }), { nil: undefined }),
        fc.option(fc.webUrl(), { nil: undefined }),
        (leadId, purpose, m, u) => {
          const token = tokenOf(signer.url(purpose, leadId, NOW, { m, u }));
          const r = signer.verify(token, purpose, NOW);
          assert.ok(r.ok);
          assert.equal(r.payload.l, leadId);
          assert.equal(r.payload.p, purpose);
          assert.equal(r.payload.m, m);
          assert.equal(r.payload.u, u);
          for (const other of LINK_PURPOSES.filter((p) => p !== purpose)) {
            assert.deepEqual(signer.verify(token, other, NOW), { ok: false, reason: 'wrong_purpose' });
          }
        },
      ),
    );
  });

  it('refuses a tampered token', () => {
    const token = tokenOf(signer.url('unsubscribe', 'lead-42', NOW));
    const [body, mac] = token.split('.') as [string, string];
    // Another lead in the payload, signature kept.
    const forged = Buffer.from(JSON.stringify({ ...payloadOf(token), l: 'lead-43' })).toString('base64url');
    assert.deepEqual(signer.verify(`${forged}.${mac}`, 'unsubscribe', NOW), { ok: false, reason: 'bad_signature' });
    // A later expiry.
    const extended = Buffer.from(JSON.stringify({ ...payloadOf(token), e: payloadOf(token).e + 1e6 })).toString(
      'base64url',
    );
    assert.deepEqual(signer.verify(`${extended}.${mac}`, 'unsubscribe', NOW), { ok: false, reason: 'bad_signature' });
    // One character of the signature changed.
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    assert.deepEqual(signer.verify(`${body}.${flipped}`, 'unsubscribe', NOW), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(signer.verify(`${body}.${mac.slice(1)}`, 'unsubscribe', NOW), {
      ok: false,
      reason: 'bad_signature',
    });
    assert.deepEqual(signer.verify(`${body}.`, 'unsubscribe', NOW), { ok: false, reason: 'malformed' });
  });

  it('refuses a token signed with another secret', () => {
    const other = new LinkSigner('another-secret-of-some-length', BASE);
    const token = tokenOf(other.url('sales', 'lead-42', NOW));
    assert.deepEqual(signer.verify(token, 'sales', NOW), { ok: false, reason: 'bad_signature' });
  });

  it('refuses a link for another purpose', () => {
    const token = tokenOf(signer.url('open', 'lead-42', NOW));
    assert.deepEqual(signer.verify(token, 'unsubscribe', NOW), { ok: false, reason: 'wrong_purpose' });
    assert.deepEqual(signer.verify(token, 'sales', NOW), { ok: false, reason: 'wrong_purpose' });
  });

  it('refuses an expired link, and accepts it up to its expiry', () => {
    for (const purpose of LINK_PURPOSES) {
      const token = tokenOf(signer.url(purpose, 'lead-42', NOW));
      const expiry = NOW + LINK_TTL[purpose] * DAY;
      assert.equal(signer.verify(token, purpose, expiry).ok, true, `${purpose} at its expiry`);
      assert.deepEqual(signer.verify(token, purpose, expiry + 1), { ok: false, reason: 'expired' });
    }
    const short = tokenOf(signer.url('sales', 'lead-42', NOW, { ttlDays: 1 }));
    assert.equal(signer.verify(short, 'sales', NOW + DAY - 1).ok, true);
    assert.deepEqual(signer.verify(short, 'sales', NOW + DAY + 1000), { ok: false, reason: 'expired' });
  });

  it('refuses malformed tokens', () => {
    const token = tokenOf(signer.url('click', 'lead-42', NOW));
    for (const bad of ['', 'abc', '.', `${token}.extra`, `.${token.split('.')[1]}`]) {
      assert.deepEqual(signer.verify(bad, 'click', NOW), { ok: false, reason: 'malformed' }, JSON.stringify(bad));
    }
    // Correctly signed but not a link payload.
    const junk = (payload: unknown) => signer.token(payload as never);
    assert.deepEqual(signer.verify(junk({ l: 'lead-42', p: 'teleport', e: 2e9 }), 'click', NOW), {
      ok: false,
      reason: 'malformed',
    });
    assert.deepEqual(signer.verify(junk({ l: 'lead-42', p: 'click', e: 'never' }), 'click', NOW), {
      ok: false,
      reason: 'malformed',
    });
    const notJson = Buffer.from('not json').toString('base64url');
    const signedNotJson = junk({}).replace(/^[^.]*/, notJson);
    assert.equal(signer.verify(signedNotJson, 'click', NOW).ok, false);
  });

  it('different leads and purposes get different tokens', () => {
    const tokens = new Set<string>();
    for (const purpose of LINK_PURPOSES as readonly LinkPurpose[]) {
      for (const lead of ['a', 'b']) tokens.add(tokenOf(signer.url(purpose, lead, NOW)));
    }
    assert.equal(tokens.size, LINK_PURPOSES.length * 2);
  });
});

describe('sales links are bound to their owner and episode', () => {
  const SQL_AT = '2026-01-05T15:00:00.000Z';
  const link = (owner: string, escalation: number, sqlAt = SQL_AT) => {
    const r = signer.verify(
      tokenOf(signer.url('sales', 'lead-42', NOW, { m: `${sqlAt}:${escalation}`, o: owner })),
      'sales',
      NOW,
    );
    assert.ok(r.ok);
    return r.payload;
  };
  const sql = (owner: string, escalations: number) => ({ stage: 'sql', owner, becameSqlAt: SQL_AT, escalations });

  it('carries the owner in the signed payload', () => {
    assert.equal(link('ben@sales.example', 0).o, 'ben@sales.example');
    assert.deepEqual(episodeOf(`${SQL_AT}:1`), { sqlAt: SQL_AT, escalation: 1 });
    assert.equal(episodeOf('no-episode'), undefined);
    assert.equal(episodeOf(`${SQL_AT}:x`), undefined);
    assert.deepEqual(episodeOf(formatEpisode(SQL_AT, 2)), { sqlAt: SQL_AT, escalation: 2 });
  });

  it('is current for its owner in its episode only', () => {
    assert.equal(salesLinkStatus(link('ben@sales.example', 0), sql('ben@sales.example', 0)), 'current');
    // Escalated from ben to ana: ben's link moved on, ana's is current.
    assert.equal(salesLinkStatus(link('ben@sales.example', 0), sql('ana@sales.example', 1)), 'moved_on');
    assert.equal(salesLinkStatus(link('ana@sales.example', 1), sql('ana@sales.example', 1)), 'current');
    // Same owner again after the escalation went round (a pool of one): the episode still tells them apart.
    assert.equal(salesLinkStatus(link('ben@sales.example', 0), sql('ben@sales.example', 1)), 'moved_on');
    // A later handoff (recycled, then sql again): an old link is not current.
    assert.equal(
      salesLinkStatus(link('ben@sales.example', 0, '2025-12-01T00:00:00.000Z'), sql('ben@sales.example', 0)),
      'moved_on',
    );
    // A forged owner in a valid episode is not current either (the owner is signed, this checks the binding).
    assert.equal(salesLinkStatus(link('mallory@evil.example', 0), sql('ben@sales.example', 0)), 'moved_on');
    // No longer in sql: decided.
    for (const stage of ['opportunity', 'recycled', 'disqualified'])
      assert.equal(salesLinkStatus(link('ben@sales.example', 0), { ...sql('ben@sales.example', 0), stage }), 'decided');
    // A sales link without an episode is never current.
    assert.equal(salesLinkStatus({ o: 'ben@sales.example' }, sql('ben@sales.example', 0)), 'moved_on');
  });
});
