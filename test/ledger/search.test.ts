/**
 * Search over the ledger's leads, on both backends: each filter, every page of a paged search in
 * lead_id order, limits, bad page tokens.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Stage } from '../../src/domain/stages.js';
import type { LeadSearch, LeadSearchHit } from '../../src/ledger/search.js';
import { BACKEND_TITLES, BACKENDS, useLedgerDatabase } from '../helpers/ledger.js';
import { seed } from './seed.js';

for (const backend of BACKENDS) {
  describe(`search over the ledger on ${BACKEND_TITLES[backend]}`, () => {
    const db = useLedgerDatabase(backend);

    describe('search', () => {
      const OWNERS = ['ana@sales.example', 'ben@sales.example', undefined];
      const CAMPAIGNS = ['c1', 'c2', undefined];
      const SEARCH_STAGES: Stage[] = ['lead', 'mql', 'sql', 'customer'];
      const expected: LeadSearchHit[] = [];
      before(async () => {
        for (let i = 0; i < 23; i++) {
          const leadId = `s-${String(i).padStart(2, '0')}`;
          const stage = SEARCH_STAGES[i % 4]!;
          const owner = OWNERS[i % 3];
          const campaign = CAMPAIGNS[Math.floor(i / 3) % 3];
          const consent = i % 5 === 0 ? 'unsubscribed' : 'subscribed';
          const day = `2025-06-${String(i + 1).padStart(2, '0')}`;
          const path: [Stage, string][] =
            stage === 'lead'
              ? []
              : stage === 'mql'
                ? [['mql', day]]
                : [
                    ['mql', day],
                    ['sql', `2025-07-${String(i + 1).padStart(2, '0')}`],
                  ];
          if (stage === 'customer') path.push(['opportunity', '2025-08-01'], ['customer', '2025-08-02']);
          const model = i % 2 ? 'smb' : 'enterprise';
          await seed(db.ledger, leadId, path, { owner, campaign, model, score: i * 5, consent });
          expected.push({
            leadId,
            stage,
            score: i * 5,
            ...(owner ? { owner } : {}),
            ...(campaign ? { campaign } : {}),
            ...(path.length ? { becameMqlAt: `${day}T00:00:00.000Z` } : {}),
            ...(path.length > 1 ? { becameSqlAt: `2025-07-${String(i + 1).padStart(2, '0')}T00:00:00.000Z` } : {}),
            consent,
          });
        }
      });

      async function everyPage(q: LeadSearch) {
        const pages: LeadSearchHit[][] = [];
        let pageToken = q.pageToken;
        do {
          const page = await db.ledger.search({ ...q, pageToken });
          pages.push(page.leads);
          pageToken = page.nextPageToken;
          assert.ok(pages.length <= 30, 'a search that never ends');
        } while (pageToken);
        return pages;
      }

      const cases: [string, LeadSearch, (l: LeadSearchHit) => boolean][] = [
        ['no filter', {}, () => true],
        ['stage', { stage: 'mql' }, (l) => l.stage === 'mql'],
        ['owner', { owner: 'ana@sales.example' }, (l) => l.owner === 'ana@sales.example'],
        ['campaign', { campaign: 'c2' }, (l) => l.campaign === 'c2'],
        ['minScore', { minScore: 62 }, (l) => l.score >= 62],
        ['model', { model: 'smb' }, (l) => Number(l.leadId.slice(2)) % 2 === 1],
        [
          'model and stage',
          { model: 'enterprise', stage: 'mql' },
          (l) => l.stage === 'mql' && Number(l.leadId.slice(2)) % 2 === 0,
        ],
        [
          'all four',
          { stage: 'sql', owner: 'ben@sales.example', campaign: 'c1', minScore: 10 },
          (l) => l.stage === 'sql' && l.owner === 'ben@sales.example' && l.campaign === 'c1' && l.score >= 10,
        ],
        ['nothing matches', { stage: 'dormant' }, () => false],
      ];
      for (const [name, q, keep] of cases) {
        test(`search (${name}): every page in lead_id order, none longer than the limit, no empty last page`, async () => {
          const want = expected.filter(keep);
          const pages = await everyPage({ ...q, limit: 4 });
          assert.deepEqual(pages.flat(), want);
          assert.equal(pages.length, Math.max(1, Math.ceil(want.length / 4)));
          assert.ok(pages.every((p) => p.length <= 4));
        });
      }

      test('search: the default limit is 50, and limits are clamped to 1..1000', async () => {
        assert.equal((await db.ledger.search()).leads.length, 23);
        assert.equal((await db.ledger.search()).nextPageToken, undefined);
        const one = await db.ledger.search({ limit: 0 });
        assert.deepEqual(
          one.leads.map((l) => l.leadId),
          ['s-00'],
        );
        assert.ok(one.nextPageToken);
        assert.equal((await db.ledger.search({ limit: 5000 })).leads.length, 23);
      });

      test('search: an empty filter is no filter; a lead written between pages after the last one read is found', async () => {
        assert.equal((await db.ledger.search({ owner: '', campaign: '', stage: '' })).leads.length, 23);
        const first = await db.ledger.search({ stage: 'lead', limit: 3 });
        await seed(db.ledger, 's-99', [], { campaign: 'c1' });
        const rest = await everyPage({ stage: 'lead', limit: 3, pageToken: first.nextPageToken });
        assert.deepEqual(
          [...first.leads, ...rest.flat()].map((l) => l.leadId),
          [...expected.filter((l) => l.stage === 'lead').map((l) => l.leadId), 's-99'],
        );
        await db.pool.query("DELETE FROM leads WHERE lead_id = 's-99'");
      });

      test('search: a page token that is not one this search gave out is bad_page_token', async () => {
        const isBad = (e: { code?: string }) => e.code === 'bad_page_token';
        const token = (await db.ledger.search({ stage: 'mql', limit: 2 })).nextPageToken!;
        assert.equal((await db.ledger.search({ stage: 'mql', limit: 2, pageToken: token })).leads.length, 2);
        for (const pageToken of [
          'garbage',
          '',
          'a'.repeat(5000),
          '!!!',
          Buffer.from('o:10').toString('base64url'),
          Buffer.from('k1:abc:s-01').toString('base64url'),
          `${token}=`,
          `${token}.`,
        ]) {
          await assert.rejects(db.ledger.search({ stage: 'mql', pageToken }), isBad, pageToken);
        }
        // Another search's token (other filters) is refused too; another limit is fine.
        await assert.rejects(db.ledger.search({ stage: 'sql', pageToken: token }), isBad);
        await assert.rejects(db.ledger.search({ pageToken: token }), isBad);
        assert.equal((await db.ledger.search({ stage: 'mql', limit: 10, pageToken: token })).leads.length, 4);
      });
    });
  });
}
