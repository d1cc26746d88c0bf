/**
 * The config's `webhooks` list (src/domain/config.ts) and the secrets it names (src/webhooks/send.ts):
 * a good entry loads with its defaults; every bad entry is refused with its path beside the rest of
 * the file's problems; a secretEnv naming an unset or malformed variable is refused when the worker
 * checks its endpoints at start, naming the endpoint and the variable.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config-file.js';
import { problemAt, problemsOf as configProblems, rawDefault } from '../helpers/config-problems.js';
import { isWebhookSecret, WEBHOOK_EVENTS } from '../../src/domain/config.js';
import { checkEndpointSecrets, endpointSecret, WebhookSecretError } from '../../src/webhooks/send.js';

const secret = (bytes = 24) => `whsec_${randomBytes(bytes).toString('base64')}`;
const endpoint = (over: Record<string, unknown> = {}) => ({
  id: 'crm',
  url: 'https://crm.example/hooks',
  events: ['lead.stage_changed'],
  secret: secret(),
  ...over,
});

/** The problems of the default config with these webhook endpoints. */
function problemsOf(webhooks: unknown[]) {
  const raw = rawDefault();
  raw.webhooks = webhooks;
  return configProblems(raw);
}

describe('config webhooks', () => {
  it('loads good endpoints, every event type, secret or secretEnv, with the retry default unset', () => {
    const raw = rawDefault();
    raw.webhooks = [
      endpoint({ events: [...WEBHOOK_EVENTS], retry: { initialInterval: '2s' } }),
      { id: 'second_one', url: 'http://127.0.0.1:8080/x', events: ['lead.handed_off'], secretEnv: 'CRM_SECRET' },
    ];
    const { config } = validateConfig(raw, 'test.yaml', process.cwd());
    assert.equal(config.webhooks.length, 2);
    assert.equal(config.webhooks[0]!.retry?.initialInterval, 2000);
    assert.equal(config.webhooks[1]!.secretEnv, 'CRM_SECRET');
    assert.equal(config.webhooks[1]!.retry, undefined);
    delete raw.webhooks;
    assert.deepEqual(validateConfig(raw, 'test.yaml', process.cwd()).config.webhooks, [], 'none by default');
  });

  it('refuses a URL that is not http(s)', () => {
    for (const url of [
      'ftp://crm.example/hooks',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'crm.example/hooks',
      '',
    ]) {
      problemAt(problemsOf([endpoint({ url })]), 'webhooks.0.url', /http\(s\) URL/);
    }
  });

  it('refuses duplicate ids and bad ids, naming the later entry', () => {
    const problems = problemsOf([endpoint(), endpoint({ url: 'https://other.example/' }), endpoint({ id: 'Bad Id' })]);
    problemAt(problems, 'webhooks.1.id', /duplicate webhook id crm/);
    problemAt(problems, 'webhooks.2.id', /lower case/);
    assert.ok(!problems.some((p) => p.path === 'webhooks.0.id'), 'the first one is fine');
  });

  it('refuses both and neither of secret and secretEnv', () => {
    problemAt(
      problemsOf([endpoint({ secretEnv: 'CRM_SECRET' })]),
      'webhooks.0.secret',
      /exactly one of secret and secretEnv/,
    );
    const neither = endpoint();
    delete (neither as { secret?: string }).secret;
    problemAt(problemsOf([neither]), 'webhooks.0.secret', /exactly one of secret and secretEnv/);
    problemAt(
      problemsOf([endpoint({ secret: undefined, secretEnv: 'lower-case' })]),
      'webhooks.0.secretEnv',
      /environment variable/,
    );
  });

  it('refuses a secret that is not whsec_ and the base64 of at least 24 bytes', () => {
    for (const bad of [
      randomBytes(24).toString('base64'), // no prefix
      `whsk_${randomBytes(24).toString('base64')}`,
      secret(23), // too short
      secret(16),
      'whsec_',
      `whsec_${randomBytes(24).toString('base64')}!`, // not base64
      `whsec_${randomBytes(24)
        .toString('base64url')
        .replace(/[A-Za-z0-9+/]/, '_')}`,
    ]) {
      assert.equal(isWebhookSecret(bad), false, bad);
      problemAt(problemsOf([endpoint({ secret: bad })]), 'webhooks.0.secret', /whsec_.*24 bytes/);
    }
    for (const good of [secret(24), secret(32), secret(25), secret(26)]) {
      assert.equal(isWebhookSecret(good), true, good);
      assert.deepEqual(problemsOf([endpoint({ secret: good })]), [], good);
    }
  });

  it('refuses unknown and missing event names', () => {
    const problems = problemsOf([
      endpoint({ events: ['lead.stage_changed', 'lead.created'] }),
      endpoint({ id: 'two', events: [] }),
    ]);
    problemAt(problems, 'webhooks.0.events.1');
    problemAt(problems, 'webhooks.1.events', /at least one of lead\.stage_changed/);
  });

  it('refuses unknown fields and bad retry durations, and reports every problem of the file at once', () => {
    const problems = problemsOf([
      endpoint({ headers: { x: 1 } }),
      endpoint({ id: 'b', url: 'smtp://x', retry: { initialInterval: 'soon' } }),
    ]);
    assert.ok(
      problems.some((p) => p.path.startsWith('webhooks.0') && /headers/.test(p.path + p.message)),
      JSON.stringify(problems),
    );
    problemAt(problems, 'webhooks.1.url');
    problemAt(problems, 'webhooks.1.retry.initialInterval');
  });

  it('a secretEnv naming an unset or malformed variable is refused at worker start, naming endpoint and variable', () => {
    const raw = rawDefault();
    raw.webhooks = [endpoint({ secret: undefined, secretEnv: 'CRM_WEBHOOK_SECRET' })];
    const [e] = validateConfig(raw, 'test.yaml', process.cwd()).config.webhooks;
    assert.throws(
      () => checkEndpointSecrets([e!], {}),
      (err: Error) =>
        err instanceof WebhookSecretError &&
        /webhooks\.crm\.secretEnv: .*CRM_WEBHOOK_SECRET is not set/.test(err.message),
    );
    assert.throws(() => endpointSecret(e!, { CRM_WEBHOOK_SECRET: '  ' }), /is not set/);
    assert.throws(() => endpointSecret(e!, { CRM_WEBHOOK_SECRET: 'hunter2' }), /CRM_WEBHOOK_SECRET must be whsec_/);
    const value = secret();
    assert.equal(endpointSecret(e!, { CRM_WEBHOOK_SECRET: ` ${value}\n` }), value);
    assert.doesNotThrow(() => checkEndpointSecrets([e!], { CRM_WEBHOOK_SECRET: value }));
  });
});
