/**
 * The payload codec (src/codec.ts) on its own: round trip, rotation, refusal of unknown keys and
 * of tampering, pass-through of plaintext payloads (recorded histories), and PAYLOAD_KEYS parsing.
 * No Temporal: the end-to-end proof (no address in the dev server's database) is in
 * test/stack/stack.test.ts, the codec server's protocol in codec-server.test.ts.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  dataConverter,
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  FAILURE_CONVERTER_PATH,
  generatePayloadKey,
  KEY_ID_METADATA,
  parsePayloadKeys,
  PayloadKeyError,
  payloadKeysForTools,
} from '../../src/codec.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const key = (id: string, byte: number) => `${id}:${Buffer.alloc(32, byte).toString('base64')}`;
const text = (v: Uint8Array | null | undefined) => Buffer.from(v ?? new Uint8Array()).toString('utf8');
const profile = { leadId: 'codec-1', email: 'secret.person@private.example', firstName: 'Ada', extra: 'ünïcødé ✓' };
const plain = () => defaultPayloadConverter.toPayload(profile);

describe('payload codec', () => {
  it('round-trips a payload, and the encoded one holds no plaintext', async () => {
    const codec = new EncryptionCodec(parsePayloadKeys(key('k1', 1)));
    const [enc] = await codec.encode([plain()]);
    assert.equal(text(enc!.metadata!.encoding), ENCRYPTED_ENCODING);
    assert.equal(text(enc!.metadata![KEY_ID_METADATA]), 'k1');
    assert.deepEqual(
      Object.keys(enc!.metadata!).sort(),
      ['encoding', KEY_ID_METADATA].sort(),
      'the original metadata (json/plain) is inside the ciphertext',
    );
    assert.ok(!Buffer.from(enc!.data!).includes('secret.person'), 'the address is not in the encoded bytes');
    const [dec] = await codec.decode([enc!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(dec!), profile);
    assert.equal(text(dec!.metadata!.encoding), 'json/plain');
  });

  it('uses a fresh IV per payload: the same input encrypts differently every time', async () => {
    const codec = new EncryptionCodec(parsePayloadKeys(key('k1', 1)));
    const [a, b] = await codec.encode([plain(), plain()]);
    assert.notDeepEqual(Buffer.from(a!.data!), Buffer.from(b!.data!));
    assert.notDeepEqual(Buffer.from(a!.data!).subarray(0, 12), Buffer.from(b!.data!).subarray(0, 12));
  });

  it('keeps empty payloads and empty batches (a workflow with no result, a signal without args)', async () => {
    const codec = new EncryptionCodec(parsePayloadKeys(key('k1', 1)));
    assert.deepEqual(await codec.encode([]), []);
    const empty: Payload = {
      metadata: { encoding: new Uint8Array(Buffer.from('binary/null')) },
      data: new Uint8Array(),
    };
    const [dec] = await codec.decode(await codec.encode([empty]));
    assert.equal(text(dec!.metadata!.encoding), 'binary/null');
    assert.equal(dec!.data!.length, 0);
  });

  it('rotates: the first key encrypts, an older key still decrypts what it encrypted', async () => {
    const old = new EncryptionCodec(parsePayloadKeys(key('k1', 1)));
    const rotated = new EncryptionCodec(parsePayloadKeys(`${key('k2', 2)},${key('k1', 1)}`));
    const [byOld] = await old.encode([plain()]);
    const [byNew] = await rotated.encode([plain()]);
    assert.equal(text(byNew!.metadata![KEY_ID_METADATA]), 'k2', 'the first key encrypts');
    assert.deepEqual(
      defaultPayloadConverter.fromPayload((await rotated.decode([byOld!]))[0]!),
      profile,
      'the old key still decrypts',
    );
    await assert.rejects(
      old.decode([byNew!]),
      (err: Error) =>
        err instanceof PayloadKeyError && /key id "k2"/.test(err.message) && /known: k1/.test(err.message),
      'an unknown key id is a clear error naming it',
    );
  });

  it('refuses a tampered payload: a flipped ciphertext byte, a flipped tag byte, a relabelled key id', async () => {
    const codec = new EncryptionCodec(parsePayloadKeys(`${key('k1', 1)},${key('k2', 1)}`)); // same bytes, two ids: the id is authenticated
    const [enc] = await codec.encode([plain()]);
    for (const at of [12, enc!.data!.length - 1]) {
      const data = Buffer.from(enc!.data!);
      data[at]! ^= 1;
      await assert.rejects(
        codec.decode([{ ...enc!, data: new Uint8Array(data) }]),
        /failed authentication/,
        `byte ${at} flipped`,
      );
    }
    const relabelled = {
      ...enc!,
      metadata: { ...enc!.metadata, [KEY_ID_METADATA]: new Uint8Array(Buffer.from('k2')) },
    };
    await assert.rejects(codec.decode([relabelled]), /failed authentication/);
    await assert.rejects(codec.decode([{ ...enc!, data: new Uint8Array(10) }]), /too short/);
    await assert.rejects(
      codec.decode([{ ...enc!, metadata: { encoding: enc!.metadata!.encoding! } }]),
      /no encryption-key-id/,
    );
  });

  it('passes plaintext payloads through decode (histories recorded before encryption replay)', async () => {
    const codec = new EncryptionCodec(parsePayloadKeys(key('k1', 1)));
    const p = plain();
    const [dec] = await codec.decode([p]);
    assert.equal(dec, p);
  });

  it('parses PAYLOAD_KEYS, naming the variable, the entry and the reason, never the key', () => {
    assert.deepEqual(
      parsePayloadKeys(` ${key('a', 1)} , ${key('b.2_x-y', 2)} `).map((k) => k.id),
      ['a', 'b.2_x-y'],
    );
    const refused = (value: string | undefined, reason: RegExp) =>
      assert.throws(
        () => parsePayloadKeys(value),
        (err: Error) => {
          assert.ok(err instanceof PayloadKeyError, String(err));
          assert.match(err.message, /^PAYLOAD_KEYS/);
          assert.match(err.message, reason);
          assert.ok(!err.message.includes(Buffer.alloc(32, 9).toString('base64')), 'the key is not in the message');
          return true;
        },
      );
    refused(undefined, /is not set/);
    refused(' , ', /is not set/);
    refused(Buffer.alloc(32, 9).toString('base64'), /entry 1: expected keyId:base64/);
    refused(`${key('a', 1)},${key('a', 9)}`, /entry 2: key id "a" appears twice/);
    refused(`a:${Buffer.alloc(16, 9).toString('base64')}`, /must be 32 bytes \(AES-256\), got 16/);
    refused('a:not*base64', /not base64/);
    refused(`bad id:${Buffer.alloc(32, 9).toString('base64')}`, /key id of 1-64/);
    assert.equal(parsePayloadKeys(generatePayloadKey()).length, 1, 'a generated key parses');
    assert.notEqual(generatePayloadKey('x'), generatePayloadKey('x'), 'generated keys are random');
  });

  it('reads the keys `npm start` wrote for tools run beside it, env first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    assert.throws(() => payloadKeysForTools({ DATA_DIR: dir }), /PAYLOAD_KEYS is not set and .*payload-keys/);
    writeFileSync(join(dir, 'payload-keys'), `${key('f1', 3)}\n`);
    assert.deepEqual(
      payloadKeysForTools({ DATA_DIR: dir }).map((k) => k.id),
      ['f1'],
    );
    assert.deepEqual(
      payloadKeysForTools({ DATA_DIR: dir, PAYLOAD_KEYS: key('e1', 4) }).map((k) => k.id),
      ['e1'],
    );
  });

  it("the data converter encodes failures' messages (encodeCommonAttributes) through the codec", async () => {
    const dc = dataConverter(parsePayloadKeys(key('k1', 1)));
    assert.equal(dc.payloadCodecs?.length, 1);
    assert.equal(dc.failureConverterPath, FAILURE_CONVERTER_PATH);
    const { failureConverter } = (await import(FAILURE_CONVERTER_PATH)) as {
      failureConverter: import('@temporalio/common').FailureConverter;
    };
    const failure = failureConverter.errorToFailure(
      new Error('bad address secret.person@private.example'),
      defaultPayloadConverter,
    );
    assert.equal(failure.message, 'Encoded failure', 'the message moves into encodedAttributes');
    assert.ok(failure.encodedAttributes, 'encodedAttributes is a payload the codec encrypts');
    assert.ok(!JSON.stringify({ ...failure, encodedAttributes: undefined }).includes('secret.person'));
  });
});
