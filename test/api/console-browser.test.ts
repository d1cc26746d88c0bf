/**
 * The console in a real browser (Debian's Chromium driven by playwright-core) against the API on
 * loopback over a real Temporal dev server, worker and ledger: sign in, read the funnel after an
 * imported history (the same figures as GET /v1/funnel), find a lead and read its timeline,
 * accept a lead from the sales queue and see its stage change, run a what-if with an invalid
 * candidate (every problem with its path) and a valid one (self-check 100 %), and a session that
 * is gone sends the browser to the login. Nothing may be blocked by the console's CSP.
 * `SCREENSHOT_DIR=docs` writes the screenshots the README shows. Needs /usr/bin/chromium
 * (`apt-get install -y chromium`); without it this test fails and says so, it never skips.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { useBrowserStack } from '../helpers/browser.js';
import { stringify } from 'yaml';
import { importCsvText } from '../helpers/import.js';
import { eventually, TOKEN, uid, waitState } from './fixture.js';

const shot = async (page: Page, name: string) => {
  if (process.env.SCREENSHOT_DIR)
    await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/console-${name}.png`, fullPage: true });
};

/** An imported history: 12 leads that became MQL in 2025, some went on to sql and customer. */
function history(prefix: string): string {
  const rows = ['leadId,email,company,stage,becameMqlAt,becameSqlAt,becameCustomerAt,channel'];
  for (let i = 0; i < 12; i++) {
    const mql = `2025-0${1 + (i % 6)}-1${i % 10}`;
    const stage = i % 4 === 0 ? 'customer' : i % 3 === 0 ? 'sql' : 'mql';
    const sql = stage === 'mql' ? '' : `2025-0${1 + (i % 6)}-2${i % 10}`;
    const customer = stage === 'customer' ? `2025-0${2 + (i % 6)}-05` : '';
    const channel = i % 2 ? 'webinar' : 'paid_search';
    rows.push(`${prefix}-${i},${prefix}-${i}@hist.example,Co ${i},${stage},${mql},${sql},${customer},${channel}`);
  }
  return rows.join('\n') + '\n';
}

const b = useBrowserStack();

describe('console in a browser', () => {
  it('signs in, reads the funnel, a lead, the queue and a what-if', async () => {
    const { stack, browser, base } = b;
    // An imported history, through the import's own row handling.
    const prefix = uid('hist');
    const { summary } = await importCsvText(
      history(prefix),
      {
        kind: 'leads',
        send: async (value, row) =>
          (await stack.worker.service.importLead(value, row.fact)).created ? 'created' : 'updated',
      },
      'created',
    );
    assert.equal(summary.bad, 0);
    const funnel = await eventually('the imported history in the funnel', async () => {
      const r = await stack.call('GET', '/v1/funnel?since=2025-01-01&until=2026-01-01&by=channel');
      return r.json.total.mqls === 12 && r.json.total.customers === 3 ? r.json : undefined;
    });
    // A live lead for the queue: a VP asks for a demo and is handed to an owner.
    const leadId = uid('live');
    await stack.call('POST', '/v1/leads', {
      body: {
        leadId,
        email: `${leadId}@bigco.example`,
        firstName: 'Kim',
        lastName: 'Lee',
        company: 'BigCo',
        seniority: 'vp',
        country: 'US',
      },
    });
    await stack.call('POST', '/v1/events', { body: { leadId, eventId: uid('web'), type: 'webinar_attended' } });
    await stack.call('POST', '/v1/events', { body: { leadId, eventId: uid('demo'), type: 'demo_request' } });
    const st = await waitState(stack, leadId, (x) => x.stage === 'sql' && !!x.owner && !!x.slaDeadline, 'sql');
    // Two directors: fit 20, below the mql threshold of 40; a candidate at 15 makes them MQLs.
    const directors = [uid('dir'), uid('dir')];
    for (const id of directors) {
      await stack.call('POST', '/v1/leads', {
        body: { leadId: id, email: `${id}@mid.example`, seniority: 'director', country: 'CA' },
      });
      await waitState(stack, id, (x) => x.stage === 'lead' && x.score.fit === 20, 'a lead');
    }

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      const blocked: string[] = [];
      page.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && blocked.push(m.text()));
      page.on('pageerror', (e) => blocked.push(`script error: ${e.message}`));

      // Sign in: the login first, then back where the browser wanted to go.
      await page.goto(`${base}/console/funnel?since=2025-01-01&until=2026-01-01&by=channel`);
      assert.match(page.url(), /\/console\/login\?next=/);
      await shot(page, 'login');
      await page.fill('input[name=token]', TOKEN);
      await page.fill('input[name=owner]', st.owner!);
      await Promise.all([page.waitForURL(/\/console\/funnel\?/), page.click('form.login button')]);
      assert.ok(!page.url().includes(TOKEN), 'no token in the URL');
      assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is out of script reach');

      // The funnel: the chart drawn, the table's figures those of GET /v1/funnel.
      await page.waitForFunction(() => {
        const c = document.querySelector('#funnel-chart') as HTMLCanvasElement | null;
        return (
          !!c && c.width > 0 && (window as unknown as { Chart?: { getChart(c: unknown): unknown } }).Chart?.getChart(c)
        );
      });
      const cells = await page.$$eval('table.funnel tbody tr', (trs) =>
        trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent!.trim())),
      );
      assert.deepEqual(cells[0]!.slice(0, 5), [
        'all',
        String(funnel.total.mqls),
        String(funnel.total.sqls),
        String(funnel.total.opportunities),
        String(funnel.total.customers),
      ]);
      assert.deepEqual(
        cells.slice(1).map((c) => [c[0], c[1], c[4]]),
        funnel.groups.map((g: { key: string; mqls: number; customers: number }) => [
          g.key,
          String(g.mqls),
          String(g.customers),
        ]),
      );
      await shot(page, 'funnel');

      // Leads: search sql leads, open ours, read its timeline and its score's factors.
      await page.click('nav a[href="/console/leads"]');
      await page.selectOption('select[name=stage]', 'sql');
      await Promise.all([page.waitForURL(/stage=sql/), page.click('form.filters button')]);
      await Promise.all([page.waitForURL(/\/console\/leads\/live-/), page.click(`a:text("${leadId}")`)]);
      const timeline = (await page.textContent('table.timeline'))!;
      assert.match(timeline, /event demo_request/);
      assert.match(timeline, /lead → sql|mql → sql/);
      assert.match((await page.textContent('ul.factor-words'))!, /demo request/);
      await page.waitForFunction(() => !!document.querySelector('#factors-chart'));
      await shot(page, 'lead');

      // The queue: our lead with its countdown; accept it and see its stage change.
      await page.click('nav a[href="/console/queue"]');
      const row = page.locator('table.queue tr', { hasText: 'Kim Lee' });
      assert.match((await row.locator('.countdown').textContent())!, /(hours?|minutes?) left/);
      await shot(page, 'queue');
      await Promise.all([page.waitForURL(/\/console\/queue\?done=/), row.locator('button.accept').click()]);
      assert.match((await page.textContent('.notice'))!, new RegExp(`${leadId} accepted, now opportunity`));
      assert.match((await page.textContent('table.decisions'))!, new RegExp(`${leadId}\\s*accepted`));
      assert.equal((await stack.state(leadId)).stage, 'opportunity');

      // Models: an invalid candidate shows every problem with its path; the running config replays at 100 %.
      await page.click('nav a[href="/console/models"]');
      // Uploaded as a file: the page's script puts it into the form.
      const invalid = 'scoring:\n  thresholds: { mql: high, sql: 10 }\nrouting: []\n';
      await page.setInputFiles('input[type=file][data-into=config]', {
        name: 'candidate.yaml',
        mimeType: 'text/yaml',
        buffer: Buffer.from(invalid),
      });
      await page.waitForFunction(
        (text) => (document.querySelector('textarea[name=config]') as HTMLTextAreaElement).value === text,
        invalid,
      );
      await page.click('form.candidate button');
      await page.waitForSelector('ul.problems');
      const problems = (await page.textContent('ul.problems'))!;
      assert.match(problems, /scoring\.thresholds\.mql/);
      assert.match(problems, /routing/);
      await shot(page, 'what-if-invalid');
      const raw = stack.worker.loaded.raw as { scoring: { thresholds: object } };
      const candidate = { ...raw, scoring: { ...raw.scoring, thresholds: { ...raw.scoring.thresholds, mql: 15 } } };
      await page.fill('textarea[name=config]', stringify(candidate));
      await Promise.all([page.waitForLoadState('load'), page.click('form.candidate button')]);
      await page.waitForSelector('table.stages-compare');
      const main = (await page.textContent('main'))!;
      assert.match(
        main,
        /Self-check: the replay gives 3 of 3 leads their live score and stage \(100\.0 %\); 12 leads with imported history/,
      );
      assert.match(main, /2 leads would move/);
      const moved = (await page.textContent('table.moved'))!;
      for (const id of directors) assert.match(moved, new RegExp(`${id}\\s*lead\\s*mql`));
      await shot(page, 'what-if');

      // Signed out (the cookie gone): back to the login.
      await context.clearCookies();
      await page.goto(`${base}/console/leads`);
      assert.match(page.url(), /\/console\/login/);
      assert.deepEqual(blocked, [], 'nothing was blocked by the CSP, no script failed');
    } finally {
      await context.close();
    }
  });
});
