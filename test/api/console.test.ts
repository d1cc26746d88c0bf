/**
 * The console over HTTP on a real Temporal dev server, worker and ledger (test/api/fixture.ts):
 * the sign-in and its cookie, the redirects for a missing or forged session, the CSP, escaping of
 * profile values, cross-site posts, the sales queue's decisions, what-if with a bad and a good
 * candidate, and a rollout behind its confirmation. The browser's view is console-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseTokens } from '../../src/api/auth.js';
import { COOKIE, Sessions, SESSION_MS } from '../../src/api/console/session.js';
import { runningVersion } from '../../src/ledger/configs.js';
import { LinkSigner } from '../../src/links.js';
import { useStack } from '../helpers/stack.js';
import { OTHER_TOKEN, SALES_TOKEN, TOKEN, uid, waitState } from './fixture.js';

const s = useStack({ api: true });

interface Page {
  status: number;
  body: string;
  headers: Record<string, string | string[] | number | undefined>;
}

async function get(url: string, cookie?: string): Promise<Page> {
  const r = await s.app.inject({ method: 'GET', url, headers: cookie ? { cookie } : {} });
  return { status: r.statusCode, body: r.body, headers: r.headers };
}
async function post(url: string, form: Record<string, string>, cookie?: string, headers: Record<string, string> = {}) {
  const r = await s.app.inject({
    method: 'POST',
    url,
    payload: new URLSearchParams(form).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}), ...headers },
  });
  return { status: r.statusCode, body: r.body, headers: r.headers } as Page;
}

/** Signs in and returns the cookie to send. */
async function signIn(token = TOKEN, owner = ''): Promise<string> {
  const r = await post('/console/login', { token, owner, next: '/console/leads' });
  assert.equal(r.status, 303, r.body);
  const set = String(r.headers['set-cookie']);
  return set.split(';')[0]!;
}

const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('console sign-in', () => {
  it('sends a browser without a session to the login, keeping where it wanted to go', async () => {
    const r = await get('/console/funnel?by=channel');
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/console/login?next=%2Fconsole%2Ffunnel%3Fby%3Dchannel');
    const login = await get(String(r.headers.location));
    assert.equal(login.status, 200);
    assert.match(login.body, /name="next" value="\/console\/funnel\?by=channel"/);
  });

  it('refuses a wrong token naming the field, and sets an HttpOnly SameSite=Strict cookie without the token for a good one', async () => {
    const bad = await post('/console/login', { token: 'not-a-token' });
    assert.equal(bad.status, 401);
    assert.match(text(bad.body), /token: not a token this API accepts/);
    assert.equal(bad.headers['set-cookie'], undefined);

    const ok = await post('/console/login', { token: TOKEN, next: '/console/leads' });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, '/console/leads');
    const set = String(ok.headers['set-cookie']);
    assert.match(
      set,
      new RegExp(
        `^${COOKIE}=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+; Path=/console; HttpOnly; SameSite=Strict; Max-Age=28800$`,
      ),
    );
    assert.ok(!set.includes(TOKEN) && !Buffer.from(set.split(/[=.;]/)[1]!, 'base64url').toString().includes(TOKEN));
    // Never back to another site after the login.
    const away = await post('/console/login', { token: TOKEN, next: 'https://evil.example/' });
    assert.equal(away.headers.location, '/console/funnel');
  });

  it('sends a forged, altered or signed-out cookie to the login', async () => {
    const cookie = await signIn();
    assert.equal((await get('/console/leads', cookie)).status, 200);
    const [name, value] = cookie.split('=') as [string, string];
    const [body, mac] = value.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ d: '00'.repeat(8), e: Date.now() + 1e9 })).toString('base64url');
    for (const bad of [`${name}=${forged}.${mac}`, `${name}=${body}.${mac.slice(1)}x`, `${name}=garbage`]) {
      const r = await get('/console/leads', bad);
      assert.equal(r.status, 303, bad);
      assert.match(String(r.headers.location), /^\/console\/login/);
    }
    const out = await post('/console/logout', {}, cookie);
    assert.equal(out.status, 303);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    // A post without a session is told to sign in, and nothing runs.
    const late = await post('/console/models/what-if', { config: 'x: 1' });
    assert.equal(late.status, 401);
    assert.match(late.body, /sign in again/);
  });

  it('ends a session when it expires or its token is no longer accepted', () => {
    const links = new LinkSigner('a-link-secret-for-the-session-test', 'http://x.test');
    let now = 1_000_000;
    const tokens = parseTokens([TOKEN]);
    const sessions = new Sessions(links, tokens, () => now);
    let set = '';
    const reply = { header: (_k: string, v: string) => ((set = v), reply) } as never;
    sessions.start({ protocol: 'http' } as never, reply, tokens[0]!, 'rep@acme.example');
    const req = { headers: { cookie: set.split(';')[0] } } as never;
    assert.deepEqual(sessions.read(req), { scope: 'admin', owner: 'rep@acme.example', expiresAt: now + SESSION_MS });
    now += SESSION_MS - 1;
    assert.ok(sessions.read(req));
    now += 1;
    assert.equal(sessions.read(req), undefined, 'expired');
    now = 1_000_000;
    assert.equal(new Sessions(links, parseTokens([OTHER_TOKEN]), () => now).read(req), undefined, 'token withdrawn');
  });

  it('shows a token only the views its scope covers: a sales token gets the queue, not the funnel or a what-if', async () => {
    const cookie = await signIn(SALES_TOKEN, 'rep@sales.example');
    const funnel = await get('/console/funnel', cookie);
    assert.equal(funnel.status, 403);
    assert.match(text(funnel.body), /needs a token with scope read \(or admin\); you signed in with a sales token/);
    assert.equal((await post('/console/models/what-if', { config: 'x: 1' }, cookie)).status, 403);
    const queue = await get('/console/queue', cookie);
    assert.equal(queue.status, 200);
    assert.match(text(queue.body), /Leads handed to rep@sales\.example/);
    assert.doesNotMatch(queue.body, /href="\/console\/funnel"[^>]*aria-current/);
  });

  it('serves pages under a CSP without inline script or style, and refuses cross-site posts', async () => {
    const cookie = await signIn();
    const r = await get('/console/funnel', cookie);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /style-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(r.headers['cache-control'], 'no-store');
    // Only JSON data blocks, never a script with a body.
    for (const m of r.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g))
      assert.ok(m[2] === '' || /type="application\/json"/.test(m[1]!), m[0]);
    const chart = await get('/console/assets/chart.umd.min.js');
    assert.equal(chart.status, 200);
    assert.match(chart.body, /Chart\.js v4/);
    const cross = await post('/console/logout', {}, cookie, { origin: 'https://evil.example' });
    assert.equal(cross.status, 403);
  });
});

describe('console views', () => {
  it('escapes every profile value on the lead page and in search results', async () => {
    const cookie = await signIn();
    const leadId = uid('xss');
    const evil = '<script>alert(1)</script>"\'&';
    assert.equal(
      (
        await s.call('POST', '/v1/leads', {
          body: { leadId, email: `${leadId}@x.example`, company: evil, firstName: '<img src=x onerror=alert(2)>' },
        })
      ).status,
      201,
    );
    await waitState(s, leadId, (x) => x.profile.company === evil, 'created');
    const r = await get(`/console/leads/${encodeURIComponent(leadId)}`, cookie);
    assert.equal(r.status, 200, r.body);
    assert.ok(!r.body.includes('<script>alert') && !r.body.includes('<img src=x'), 'no raw profile markup');
    assert.ok(r.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;'));
    assert.match(text(r.body), /Timeline/);
  });

  it('answers a bad filter with its field, and an unknown lead with a 404 page', async () => {
    const cookie = await signIn();
    const bad = await get('/console/leads?stage=nope&minScore=abc', cookie);
    assert.equal(bad.status, 400);
    assert.match(text(bad.body), /stage/);
    assert.match(text(bad.body), /minScore/);
    const funnel = await get('/console/funnel?since=2026-02-01&until=2026-01-01', cookie);
    assert.equal(funnel.status, 400);
    assert.match(text(funnel.body), /until: since must be before until/);
    const missing = await get('/console/leads/no-such-lead-here', cookie);
    assert.equal(missing.status, 404);
    assert.match(text(missing.body), /no-such-lead-here/);
  });

  it("shows an owner's sql leads with the time left, accepts one, and lists the decision", async () => {
    const leadId = uid('queue');
    await s.call('POST', '/v1/leads', {
      body: {
        leadId,
        email: `${leadId}@bigco.example`,
        firstName: 'Kim',
        company: 'BigCo',
        seniority: 'vp',
        country: 'US',
      },
    });
    await s.call('POST', '/v1/events', { body: { leadId, eventId: uid('demo'), type: 'demo_request' } });
    const st = await waitState(s, leadId, (x) => x.stage === 'sql' && !!x.owner && !!x.slaDeadline, 'sql');
    const cookie = await signIn(TOKEN, st.owner!);
    const q = await get('/console/queue', cookie);
    assert.equal(q.status, 200);
    assert.match(text(q.body), /Kim/);
    assert.match(text(q.body), /\d+ (hours?|minutes?).* left/);
    // A reject without a reason names the field, and changes nothing.
    const noReason = await post(`/console/queue/${encodeURIComponent(leadId)}`, { action: 'reject' }, cookie);
    assert.equal(noReason.status, 400);
    assert.match(text(noReason.body), /reason/);
    assert.equal((await s.state(leadId)).stage, 'sql');

    const ok = await post(`/console/queue/${encodeURIComponent(leadId)}`, { action: 'accept' }, cookie);
    assert.equal(ok.status, 303, ok.body);
    assert.equal((await s.state(leadId)).stage, 'opportunity');
    const after = await get(String(ok.headers.location), cookie);
    assert.match(text(after.body), new RegExp(`Recorded: ${leadId} accepted, now opportunity`));
    assert.match(text(after.body), new RegExp(`${leadId} accepted`));
    // Twice is refused by the stage rules, shown on the queue.
    const again = await post(`/console/queue/${encodeURIComponent(leadId)}`, { action: 'accept' }, cookie);
    assert.equal(again.status, 409);
    assert.match(text(again.body), /needs stage sql/);
  });

  it('refuses an invalid candidate config with every problem and its path, before anything runs', async () => {
    const cookie = await signIn();
    const bad = await post(
      '/console/models/what-if',
      { config: 'scoring:\n  thresholds: { mql: "high", sql: 10 }\nnurture: 7\n' },
      cookie,
    );
    assert.equal(bad.status, 400);
    const t = text(bad.body);
    assert.match(t, /nothing ran/);
    assert.match(t, /scoring\.thresholds\.mql/);
    assert.match(t, /nurture/);
    const yaml = await post('/console/models/what-if', { config: 'a: [1,\n' }, cookie);
    assert.equal(yaml.status, 400);
    assert.match(text(yaml.body), /line \d/);
    const empty = await post('/console/models/what-if', { config: '  ' }, cookie);
    assert.equal(empty.status, 400);
    assert.match(text(empty.body), /config: paste or upload a config file/);
  });

  it('runs a what-if of the running config with a 100 % self-check, and rolls out only when confirmed', async () => {
    const cookie = await signIn();
    // A won and a lost lead, so there are outcomes to draw ROC curves from.
    for (const outcome of ['won', 'lost'] as const) {
      const leadId = uid(outcome);
      await s.call('POST', '/v1/leads', {
        body: { leadId, email: `${leadId}@x.example`, seniority: 'vp', country: 'US' },
      });
      await s.call('POST', '/v1/events', { body: { leadId, eventId: uid('demo'), type: 'demo_request' } });
      await waitState(s, leadId, (x) => x.stage === 'sql', 'sql');
      const path = `/v1/leads/${encodeURIComponent(leadId)}/sales-outcome`;
      assert.equal((await s.call('POST', path, { body: { outcome: 'accepted' } })).status, 200);
      assert.equal((await s.call('POST', path, { body: { outcome } })).status, 200);
      await waitState(s, leadId, (x) => x.stage === (outcome === 'won' ? 'customer' : 'recycled'), outcome);
    }
    const configText = stringify(s.worker.loaded.raw);
    const r = await post('/console/models/what-if', { config: configText }, cookie);
    assert.equal(r.status, 200, text(r.body));
    const t = text(r.body);
    assert.match(t, /Self-check: the replay gives (\d+) of \1 leads their live score and stage \(100\.0 %\)/);
    assert.match(t, /0 leads would move/);
    assert.match(t, /ROC AUC now \d\.\d{4} ?, candidate \d\.\d{4}/);
    const roc = JSON.parse(/<script type="application\/json" id="roc-data">(.*?)<\/script>/.exec(r.body)![1]!);
    assert.deepEqual(roc.current.at(0), { fpr: 0, tpr: 0 });
    assert.deepEqual(roc.candidate.at(-1), { fpr: 1, tpr: 1 });
    const version = s.worker.loaded.version;
    const unconfirmed = await post('/console/models/rollout', { config: configText }, cookie);
    assert.equal(unconfirmed.status, 400);
    assert.match(text(unconfirmed.body), /confirm/);
    assert.notEqual(await runningVersion(s.worker.ledger!.pool), version);
    const done = await post('/console/models/rollout', { config: configText, confirm: version }, cookie);
    assert.equal(done.status, 200, text(done.body));
    assert.match(text(done.body), new RegExp(`Config ${version} is the running config`));
    assert.equal(await runningVersion(s.worker.ledger!.pool), version);
  });
});
