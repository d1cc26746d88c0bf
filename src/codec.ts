/**
 * Payload encryption (CONTRACT.md §Security): every payload the client and the worker send to
 * Temporal (inputs, signals, updates, queries, results, memos, failures) is AES-256-GCM encrypted,
 * so Temporal's database holds no plaintext profile. Search attributes and workflow ids are not
 * payloads the codec sees: they hold no profile data.
 *
 * Keys: env PAYLOAD_KEYS = comma-separated `keyId:base64(32 bytes)`. The first key encrypts, every
 * key decrypts, so a key is rotated by putting a new one first and keeping the old ones until no
 * history that needs them is left (retention, or a continue-as-new of every lead).
 *
 * An encrypted payload: metadata `encoding: binary/encrypted` and `encryption-key-id: <keyId>`;
 * data = 12-byte random IV | ciphertext | 16-byte GCM tag. The plaintext is the original payload
 * (its metadata and data, framed below), and the key id is the GCM additional data, so relabelling
 * a payload with another key id fails like any other tampering. A payload without that encoding
 * passes through decode untouched: histories recorded before encryption (test/fixtures/histories)
 * still replay.
 */
import { DefaultFailureConverter, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface PayloadKey {
  id: string;
  key: Buffer;
}

export class PayloadKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadKeyError';
  }
}

/** PAYLOAD_KEYS parsed; throws naming the variable, the entry and the reason (never the key). */
export function parsePayloadKeys(value: string | undefined, name = 'PAYLOAD_KEYS'): PayloadKey[] {
  const entries = (value ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (!entries.length)
    throw new PayloadKeyError(
      `${name} is not set: give comma-separated keyId:base64(32 bytes), e.g. k1:$(openssl rand -base64 32)`,
    );
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    const b64 = colon < 0 ? '' : entry.slice(colon + 1);
    if (!KEY_ID.test(id))
      throw new PayloadKeyError(
        `${name} entry ${i + 1}: expected keyId:base64, with a key id of 1-64 letters, digits, '.', '_' or '-'`,
      );
    if (seen.has(id)) throw new PayloadKeyError(`${name} entry ${i + 1}: key id "${id}" appears twice`);
    seen.add(id);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64))
      throw new PayloadKeyError(`${name} entry ${i + 1} (key id "${id}"): the key is not base64`);
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32)
      throw new PayloadKeyError(
        `${name} entry ${i + 1} (key id "${id}"): the key must be 32 bytes (AES-256), got ${key.length}`,
      );
    return { id, key };
  });
}

/** A new key entry for PAYLOAD_KEYS (what `npm start` writes into DATA_DIR/payload-keys). */
export function generatePayloadKey(id = `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/*
 * The plaintext framing of one payload: u32 length of the metadata JSON, the metadata JSON
 * ({ key: base64 value }), then the payload's data as it is (no base64 blow-up of the bulk).
 */
function frame(p: Payload): Buffer {
  const meta = Buffer.from(
    JSON.stringify(
      Object.fromEntries(
        Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
      ),
    ),
  );
  const head = Buffer.alloc(4);
  head.writeUInt32BE(meta.length);
  return Buffer.concat([head, meta, Buffer.from(p.data ?? new Uint8Array())]);
}

function unframe(b: Buffer): Payload {
  const n = b.readUInt32BE(0);
  const meta = JSON.parse(b.subarray(4, 4 + n).toString('utf8')) as Record<string, string>;
  return {
    metadata: Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
    data: new Uint8Array(b.subarray(4 + n)),
  };
}

const text = (v: Uint8Array | null | undefined) => (v ? Buffer.from(v).toString('utf8') : undefined);

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly current: PayloadKey;

  constructor(keys: PayloadKey[]) {
    if (!keys.length) throw new PayloadKeyError('EncryptionCodec needs at least one key');
    this.current = keys[0]!;
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
      cipher.setAAD(Buffer.from(this.current.id));
      const body = Buffer.concat([cipher.update(frame(p)), cipher.final()]);
      return {
        metadata: {
          encoding: new Uint8Array(Buffer.from(ENCRYPTED_ENCODING)),
          [KEY_ID_METADATA]: new Uint8Array(Buffer.from(this.current.id)),
        },
        data: new Uint8Array(Buffer.concat([iv, body, cipher.getAuthTag()])),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (text(p.metadata?.encoding) !== ENCRYPTED_ENCODING) return p; // plaintext: recorded before encryption
      const id = text(p.metadata?.[KEY_ID_METADATA]);
      if (!id) throw new PayloadKeyError(`an encrypted payload has no ${KEY_ID_METADATA} metadata`);
      const key = this.byId.get(id);
      if (!key)
        throw new PayloadKeyError(
          `an encrypted payload needs key id "${id}", which PAYLOAD_KEYS does not hold (known: ${[...this.byId.keys()].join(', ')})`,
        );
      const data = Buffer.from(p.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES)
        throw new PayloadKeyError(`an encrypted payload (key id "${id}") is too short to be one`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(id));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        return unframe(
          Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]),
        );
      } catch {
        throw new PayloadKeyError(
          `an encrypted payload (key id "${id}") failed authentication: tampered with, or encrypted with another key of that id`,
        );
      }
    });
  }
}

/**
 * The failure converter of client and worker: messages and stack traces of failures (an SMTP
 * error quoting an address, say) go into an encoded payload, so the codec encrypts them; their
 * details are payloads and encrypted anyway. A CommonJS file beside this one, because the SDK
 * require()s it by path.
 *
 * Not in the workflow bundle, on purpose: a failing query reaches the client as nothing but its
 * message (the server passes a query failure on as a gRPC error string), so with encoded
 * attributes every query failure would read "Encoded failure" and the API could no longer tell
 * "lead is starting; query again" from a real error. The workflow's own failure messages are the
 * engine's (a query before the first task, an update's validator refusing a stage) and quote no
 * profile; an activity failure the workflow passes on keeps its encoded attributes.
 */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

/** The data converter every client and worker of the engine uses. */
export function dataConverter(keys: PayloadKey[]): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(keys)], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/** The data converter for PAYLOAD_KEYS in env (throws PayloadKeyError naming it when unset or bad). */
export const dataConverterFromEnv = (env: NodeJS.ProcessEnv = process.env) =>
  dataConverter(parsePayloadKeys(env.PAYLOAD_KEYS));

/**
 * PAYLOAD_KEYS for tools run beside a local stack (leadctl): env, else the keys `npm start` wrote
 * into DATA_DIR/payload-keys (default .data/), read with this user's permissions. Services
 * (`npm run api`, `npm run worker`) take env only.
 */
export function payloadKeysForTools(
  env: NodeJS.ProcessEnv = process.env,
  root = resolve(dirname(fileURLToPath(import.meta.url)), '..'),
): PayloadKey[] {
  if (env.PAYLOAD_KEYS?.trim()) return parsePayloadKeys(env.PAYLOAD_KEYS);
  const file = join(resolve(env.DATA_DIR || join(root, '.data')), 'payload-keys');
  if (!existsSync(file))
    throw new PayloadKeyError(
      `PAYLOAD_KEYS is not set and ${file} (written by \`npm start\`) does not exist: set PAYLOAD_KEYS to the keys of the worker and the API`,
    );
  return parsePayloadKeys(
    readFileSync(file, 'utf8')
      .split(/[,\n]/)
      .map((l) => l.trim())
      .filter(Boolean)
      .join(','),
    `PAYLOAD_KEYS (from ${file})`,
  );
}

/** For tests that decode failures the way the client does. */
export const failureConverter = () => new DefaultFailureConverter({ encodeCommonAttributes: true });
