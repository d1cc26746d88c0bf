/**
 * The codec server (CONTRACT.md §Security): `POST /codec/encode` and `POST /codec/decode` speak
 * Temporal's codec server protocol, `{ payloads: [{ metadata: { key: base64 }, data: base64 }] }`
 * both ways, as the Temporal UI (`--ui-codec-endpoint`, or its Data Encoder setting) and the
 * `temporal` CLI (`--codec-endpoint URL --codec-auth 'Bearer <token>'`) call it.
 *
 * Who may call it: decoding shows profiles in clear, so it is behind a token like /v1. The one
 * exception is the Temporal UI of `npm start`: the UI's browser code calls the codec endpoint
 * itself and can send no token of ours (it passes only its own OIDC access token, and the dev
 * server's UI has no login), so a request without a token is served only when it comes from
 * loopback AND names one of the configured UI origins (CODEC_CORS_ORIGINS) as its Origin. A
 * stranger on the network is not on loopback; a web page on another origin is refused by the
 * Origin check (and by CORS). Everyone else sends `Authorization: Bearer <API token>`.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

export interface CodecRouteOptions {
  codec: PayloadCodec;
  /** Origins allowed by CORS (the Temporal UI's, e.g. http://localhost:8233); env CODEC_CORS_ORIGINS. */
  corsOrigins: string[];
  /** Whether the request carries a valid API token (the API's own check). */
  authorized: (req: FastifyRequest) => boolean;
}

/** CODEC_CORS_ORIGINS: comma-separated origins (scheme://host[:port]); throws naming a bad one. */
export function parseCorsOrigins(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)
    .map((o) => {
      let url: URL;
      try {
        url = new URL(o);
      } catch {
        throw new Error(`CODEC_CORS_ORIGINS: "${o}" is not an origin (scheme://host[:port])`);
      }
      if (url.origin !== o.replace(/\/$/, ''))
        throw new Error(`CODEC_CORS_ORIGINS: "${o}" is not an origin (scheme://host[:port], no path)`);
      return url.origin;
    });
}

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const bodySchema = z.object({
  // Protobuf JSON leaves an empty list out: the CLI sends `{}` for no payloads.
  payloads: z
    .array(z.object({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() }))
    .max(10_000)
    .default([]),
});

const CODEC_BODY_LIMIT = 8 * 1024 * 1024;
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const errorBody = (code: string, message: string, issues?: { path: string; message: string }[]) => ({
  error: { code, message, ...(issues?.length ? { issues } : {}) },
});

const fromJson = (p: z.infer<typeof bodySchema>['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
  ),
  data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

export async function codecRoutes(app: FastifyInstance, o: CodecRouteOptions): Promise<void> {
  const origins = new Set(o.corsOrigins);
  const cors = (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      reply
        .header('access-control-allow-origin', origin)
        .header('vary', 'Origin')
        .header('access-control-allow-credentials', 'true');
    }
  };
  /** A token, or the configured UI on this machine (see the comment at the top). */
  const allowed = (req: FastifyRequest) =>
    o.authorized(req) ||
    (!!req.headers.origin && origins.has(req.headers.origin) && LOOPBACK.has(req.socket.remoteAddress ?? ''));

  for (const op of ['encode', 'decode'] as const) {
    app.options(`/codec/${op}`, async (req, reply) => {
      cors(req, reply);
      if (!req.headers.origin || !origins.has(req.headers.origin))
        return reply
          .status(403)
          .send(
            errorBody(
              'origin_not_allowed',
              `origin ${req.headers.origin ?? '(none)'} may not call the codec server (CODEC_CORS_ORIGINS)`,
            ),
          );
      return reply
        .status(204)
        .header('access-control-allow-methods', 'POST, OPTIONS')
        .header('access-control-allow-headers', 'authorization, authorization-extras, content-type, x-namespace')
        .header('access-control-max-age', '600')
        .send();
    });
    // A payload may be up to Temporal's 2 MiB, a third more in base64: more than /v1's body limit.
    app.post(`/codec/${op}`, { bodyLimit: CODEC_BODY_LIMIT }, async (req, reply) => {
      cors(req, reply);
      if (!allowed(req)) {
        return reply
          .status(401)
          .header('www-authenticate', 'Bearer realm="lead-nurture"')
          .send(errorBody('unauthorized', 'missing or invalid bearer token (Authorization: Bearer <token>)'));
      }
      const r = bodySchema.safeParse(req.body);
      if (!r.success) {
        const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
        return reply
          .status(400)
          .send(
            errorBody(
              'invalid_input',
              `invalid codec request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
              issues,
            ),
          );
      }
      const payloads = r.data.payloads.map(fromJson);
      try {
        const out = op === 'encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
        return { payloads: out.map(toJson) };
      } catch (err) {
        // An unknown key id or a tampered payload: the caller's input, not our failure.
        return reply.status(400).send(errorBody('undecodable', (err as Error).message));
      }
    });
  }
}
