/** `leadctl show` prints a lead's data without its control characters (issue 9 item 12); no server needed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatState, visible } from '../../src/cli/leadctl.js';
import type { LeadState } from '../../src/domain/lead.js';

/** A state as an older run may hold it: recorded before the schema refused control characters. */
const state = {
  leadId: 'ctl-1',
  stage: 'mql',
  score: { total: 45, fit: 20, engagement: 25 },
  owner: 'ana@sales.example',
  profile: {
    email: 'a@example.com',
    company: 'Acme\r\nstage    customer',
    jobTitle: 'VP\u001b[2J\u001b[H',
    'x\u0007y': 'bell',
    note: 'evil\u202Etxt.exe',
  },
  consent: 'subscribed',
  nurture: { step: 1 },
  createdAt: '2026-12-01T00:00:00.000Z',
  recycleCount: 0,
  eventsProcessed: 2,
  transitions: [{ at: '2026-12-01T00:00:00.000Z', from: 'lead', to: 'mql', reason: 'score 45\nfaked line' }],
  configVersion: 'v1',
  escalations: 0,
  scoreLog: [{ at: '2026-12-01T00:00:00.000Z', type: 'profile', points: 0, note: 'n\u0000' }],
} as unknown as LeadState;

describe('leadctl show', () => {
  it('escapes CR, LF, ESC, BEL, NUL and bidi overrides in what it prints, keeping its own line breaks', () => {
    const out = formatState(state);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/.test(out), JSON.stringify(out));
    assert.ok(out.includes('Acme\\u000d\\u000astage    customer'), out);
    assert.ok(out.includes('VP\\u001b[2J\\u001b[H'));
    assert.ok(out.includes('x\\u0007y=bell'));
    assert.ok(out.includes('evil\\u202etxt.exe'));
    assert.ok(out.includes('score 45\\u000afaked line'));
    // Every line of the output is one the formatter made: no line starts with a forged key.
    assert.equal(out.split('\n').filter((l) => l.startsWith('stage')).length, 1);
    assert.equal(visible('plain text, ünïcödé'), 'plain text, ünïcödé');
  });
});
