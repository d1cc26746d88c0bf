/**
 * The owner's sales page in a real browser: Debian's Chromium driven by playwright-core opens the
 * signed reject link from the real handoff mail, picks "not ready", submits, and the lead is
 * recycled. Needs /usr/bin/chromium (`apt-get install -y chromium`); without it this test fails
 * and says so, it never skips.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useBrowserStack } from '../helpers/browser.js';
import { eventually, header, mailsFor, mailLinks, uid, waitState } from './fixture.js';

const b = useBrowserStack();

describe('sales page in a browser', () => {
  it('rejects a handed-off lead as not ready from the link in the handoff mail', async () => {
    const { stack: s, browser, base } = b;
    const leadId = uid('browser');
    const created = await s.call('POST', '/v1/leads', {
      body: {
        leadId,
        email: 'kim@bigco.example',
        firstName: 'Kim',
        lastName: 'Lee',
        company: 'BigCo <Labs>',
        seniority: 'vp',
        country: 'US',
      },
    });
    assert.equal(created.status, 201);
    assert.equal(
      (await s.call('POST', '/v1/events', { body: { leadId, eventId: uid('demo'), type: 'demo_request' } })).status,
      202,
    );
    const st = await waitState(s, leadId, (x) => x.stage === 'sql' && x.owner !== undefined, 'sql');
    const handoff = await eventually('handoff mail', async () =>
      mailsFor(s.smtp, leadId).find((m) => header(m, 'x-lead-handoff') === '1'),
    );
    assert.deepEqual(handoff.to, [st.owner]);
    const { reject } = mailLinks(handoff);
    assert.ok(reject, 'the handoff mail has a reject link');

    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // The pages' CSP (no script, the one stylesheet by hash, forms to the same origin) must not block anything they use.
      const blocked: string[] = [];
      page.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && blocked.push(m.text()));
      const res = await page.goto(`${base}${reject}`);
      assert.equal(res?.status(), 200);
      assert.match(String(res?.headers()['content-security-policy']), /default-src 'none'/);
      assert.equal(
        await page.evaluate(() => getComputedStyle(document.body).fontFamily.includes('system-ui')),
        true,
        'the stylesheet applies',
      );
      assert.match(await page.title(), /Reject this lead/);
      assert.ok((await page.textContent('body'))!.includes('BigCo <Labs>'), 'the summary shows the (escaped) company');
      if (process.env.SCREENSHOT_DIR)
        await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/sales-page.png`, fullPage: true });
      await page.selectOption('select[name=reason]', 'not_ready');
      await page.fill('#reject textarea[name=note]', 'Budget frozen until Q3');
      await Promise.all([page.waitForURL(/\/l\/sales\?t=/), page.click('#reject button[type=submit]')]);
      assert.match(await page.title(), /Lead rejected/);
      assert.match((await page.textContent('#result'))!, /now recycled/);
      assert.deepEqual(blocked, [], 'nothing was blocked by the CSP');
      if (process.env.SCREENSHOT_DIR)
        await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/sales-page-result.png`, fullPage: true });
    } finally {
      await context.close();
    }
    const after = await s.state(leadId);
    assert.equal(after.stage, 'recycled');
    assert.match(
      after.transitions.at(-1)!.reason,
      new RegExp(`sales rejected \\(not_ready\\) by ${st.owner!.replace('.', '\\.')}: Budget frozen until Q3`),
    );
  });
});
