/**
 * The codec server (src/api/codec.ts) over real HTTP, as the Temporal UI and the `temporal` CLI
 * call it: POST /codec/encode and /codec/decode with `{ payloads: [...] }` (base64 JSON), the
 * bearer token, the Temporal UI's origin on loopback without one, CORS preflight. The API listens
 * on every interface so that a request can also come from this machine's non-loopback address,
 * as a stranger's would. No Temporal server is needed: the codec works without one.
 */
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/server.js';
import { LeadService } from '../../src/lead-service.js';
import { ENCRYPTED_ENCODING, EncryptionCodec, parsePayloadKeys } from '../../src/codec.js';
import { LinkSigner } from '../../src/links.js';
import { TEST_LINK_SECRET, TEST_PAYLOAD_KEYS, testConfig } from '../helpers/temporal.js';

const TOKEN = 'codec-test-token-0123456789';
const UI = 'http://localhost:8233';
const profile = { leadId: 'c-1', email: 'decode.me@private.example' };

/** This machine's first non-loopback IPv4 address: a request from it is not "from loopback". */
function externalAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('this machine has no non-loopback IPv4 address to call the API from as a stranger would');
}

let app: FastifyInstance;
let port: number;
let connection: Connection;

const toJson = (p: ReturnType<typeof defaultPayloadConverter.toPayload>) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
  data: Buffer.from(p.data!).toString('base64'),
});

async function call(
  op: string,
  body: unknown,
  o: { host?: string; token?: string; origin?: string; method?: string } = {},
) {
  const res = await fetch(`http://${o.host ?? '127.0.0.1'}:${port}/codec/${op}?preserveStorageRefs=true`, {
    method: o.method ?? 'POST',
    headers: {
      ...(o.method === 'OPTIONS'
        ? { 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' }
        : { 'content-type': 'application/json', 'x-namespace': 'default' }),
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      ...(o.origin ? { origin: o.origin } : {}),
    },
    ...(o.method === 'OPTIONS' ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

describe('codec server', () => {
  before(async () => {
    connection = Connection.lazy({ address: '127.0.0.1:1' });
    const loaded = testConfig();
    app = buildApi({
      service: new LeadService(new Client({ connection }), 'nowhere', loaded.config),
      tokens: [TOKEN],
      links: new LinkSigner(TEST_LINK_SECRET, 'http://links.test'),
      healthCheck: async () => false,
      codec: { codec: new EncryptionCodec(parsePayloadKeys(TEST_PAYLOAD_KEYS)), corsOrigins: [UI] },
    });
    await app.listen({ port: 0, host: '0.0.0.0' });
    port = (app.server.address() as { port: number }).port;
  });
  after(async () => {
    await app?.close();
    await connection?.close();
  });

  it("encodes and decodes with the token, in the protocol's base64 JSON", async () => {
    const enc = await call(
      'encode',
      { payloads: [toJson(defaultPayloadConverter.toPayload(profile))] },
      { token: TOKEN },
    );
    assert.equal(enc.status, 200, JSON.stringify(enc.json));
    assert.equal(enc.json.payloads.length, 1);
    assert.equal(Buffer.from(enc.json.payloads[0].metadata.encoding, 'base64').toString(), ENCRYPTED_ENCODING);
    assert.ok(!Buffer.from(enc.json.payloads[0].data, 'base64').includes('decode.me'), 'encoded: no plaintext');
    const dec = await call('decode', { payloads: enc.json.payloads }, { token: TOKEN });
    assert.equal(dec.status, 200, JSON.stringify(dec.json));
    assert.equal(Buffer.from(dec.json.payloads[0].metadata.encoding, 'base64').toString(), 'json/plain');
    assert.deepEqual(JSON.parse(Buffer.from(dec.json.payloads[0].data, 'base64').toString()), profile);
    // A plaintext payload (an old history) decodes to itself.
    const passthrough = await call(
      'decode',
      { payloads: [toJson(defaultPayloadConverter.toPayload(profile))] },
      { token: TOKEN },
    );
    assert.deepEqual(passthrough.json.payloads, [toJson(defaultPayloadConverter.toPayload(profile))]);
  });

  it('answers 401 without a token (or with a wrong one), and decodes nothing', async () => {
    const enc = await call(
      'encode',
      { payloads: [toJson(defaultPayloadConverter.toPayload(profile))] },
      { token: TOKEN },
    );
    for (const o of [{}, { token: 'wrong' }, { origin: 'https://evil.example' }]) {
      const r = await call('decode', { payloads: enc.json.payloads }, o);
      assert.equal(r.status, 401, `${JSON.stringify(o)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, 'unauthorized');
      assert.ok(!JSON.stringify(r.json).includes('decode.me'));
      assert.equal(r.headers.get('access-control-allow-origin'), null, 'no CORS grant for a foreign origin');
    }
  });

  it("serves the Temporal UI's origin without a token only from loopback; a stranger sending that Origin gets 401", async () => {
    const enc = await call(
      'encode',
      { payloads: [toJson(defaultPayloadConverter.toPayload(profile))] },
      { token: TOKEN },
    );
    const local = await call('decode', { payloads: enc.json.payloads }, { origin: UI });
    assert.equal(local.status, 200, JSON.stringify(local.json));
    assert.equal(local.headers.get('access-control-allow-origin'), UI);
    assert.deepEqual(JSON.parse(Buffer.from(local.json.payloads[0].data, 'base64').toString()), profile);
    const stranger = await call('decode', { payloads: enc.json.payloads }, { origin: UI, host: externalAddress() });
    assert.equal(stranger.status, 401, `from ${externalAddress()}: ${JSON.stringify(stranger.json)}`);
    const withToken = await call(
      'decode',
      { payloads: enc.json.payloads },
      { origin: UI, host: externalAddress(), token: TOKEN },
    );
    assert.equal(withToken.status, 200, 'from anywhere with the token');
  });

  it("answers the UI's CORS preflight, and refuses one from another origin", async () => {
    for (const op of ['encode', 'decode']) {
      const ok = await call(op, undefined, { method: 'OPTIONS', origin: UI });
      assert.equal(ok.status, 204);
      assert.equal(ok.headers.get('access-control-allow-origin'), UI);
      assert.match(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
      const allowed = (ok.headers.get('access-control-allow-headers') ?? '').split(/,\s*/);
      for (const h of ['content-type', 'x-namespace', 'authorization'])
        assert.ok(allowed.includes(h), `allows header ${h}`);
      const evil = await call(op, undefined, { method: 'OPTIONS', origin: 'https://evil.example' });
      assert.equal(evil.status, 403);
      assert.equal(evil.headers.get('access-control-allow-origin'), null);
    }
  });

  it('takes a payload as large as Temporal allows (2 MiB, base64 in JSON)', async () => {
    const big = {
      metadata: { encoding: Buffer.from('binary/plain').toString('base64') },
      data: Buffer.alloc(2 * 1024 * 1024 - 64, 120).toString('base64'),
    };
    const enc = await call('encode', { payloads: [big] }, { token: TOKEN });
    assert.equal(enc.status, 200, JSON.stringify(enc.json)?.slice(0, 200));
    const dec = await call('decode', enc.json, { token: TOKEN });
    assert.equal(dec.status, 200);
    assert.equal(dec.json.payloads[0].data, big.data);
  });

  it('answers 400 naming the field for a malformed request, and for a payload it cannot decrypt', async () => {
    const bad = await call('decode', { payloads: [{ data: 'not base64!' }] }, { token: TOKEN });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_input');
    assert.equal(bad.json.error.issues[0].path, 'payloads.0.data');
    const noList = await call('encode', { payloads: 'nope' }, { token: TOKEN });
    assert.equal(noList.status, 400);
    assert.equal(noList.json.error.issues[0].path, 'payloads');
    // Protobuf JSON omits an empty list: `{}` is no payloads (the temporal CLI sends it).
    const empty = await call('decode', {}, { token: TOKEN });
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.json, { payloads: [] });
    const enc = await call(
      'encode',
      { payloads: [toJson(defaultPayloadConverter.toPayload(profile))] },
      { token: TOKEN },
    );
    const data = Buffer.from(enc.json.payloads[0].data, 'base64');
    data[20]! ^= 1;
    const tampered = await call(
      'decode',
      { payloads: [{ ...enc.json.payloads[0], data: data.toString('base64') }] },
      { token: TOKEN },
    );
    assert.equal(tampered.status, 400);
    assert.equal(tampered.json.error.code, 'undecodable');
    assert.match(tampered.json.error.message, /failed authentication/);
  });
});
