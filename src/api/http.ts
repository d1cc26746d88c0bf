/**
 * What the API's parts share: the contract's error body, the context every handler runs with,
 * and the shape of a route table entry. One entry both registers a route (src/api/routes/*.ts,
 * the open routes of src/api/server.ts) and documents it in /openapi.json (src/api/openapi.ts),
 * so no route is described twice.
 */
import type { z } from 'zod';
import type { LeadService } from '../lead-service.js';
import type { LinkSigner } from '../links.js';
import type { Budget, Scope } from './auth.js';

export type Issue = { path: string; message: string };
export const errorBody = (code: string, message: string, issues?: Issue[]) => ({
  error: { code, message, ...(issues?.length ? { issues } : {}) },
});

/** Drops empty query values, so `?stage=&minScore=` means "no filter". */
export function cleanQuery(q: unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries((q ?? {}) as Record<string, unknown>).filter(([, v]) => v !== ''));
}

/** What a handler works with (built once per app by buildApi from its ApiOptions). */
export interface ApiContext {
  service: LeadService;
  links: LinkSigner;
  /** Clock for link expiry (ms). */
  now: () => number;
  /** Runs a request's Temporal calls under one deadline (plus `extraMs`): Temporal away is a 503, not a hang. */
  temporal: <T>(fn: () => Promise<T>, extraMs?: number) => Promise<T>;
  /** Leads and events per token (ApiOptions.writeRateLimit); undefined: no limit. */
  writes: Budget | undefined;
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** A schema in the document: zod (converted with toJSONSchema) or JSON Schema as written, e.g. `ref('LeadState')`. */
export type DocSchema = z.core.$ZodType | { readonly [key: string]: unknown };
export const ref = (component: string) => ({ $ref: `#/components/schemas/${component}` });

/** One route of the API as registered and as documented. */
export interface RouteDoc {
  method: Method;
  /** In Fastify's syntax (`/v1/leads/:leadId`); the document writes `/v1/leads/{leadId}`. */
  url: string;
  summary: string;
  /** Path parameters and query string as zod objects (the /v1 routes validate with them before the handler runs). */
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: { schema: DocSchema; contentType?: 'application/json' | 'application/x-www-form-urlencoded' };
  /** By status; `schema` is the JSON answer's. The document adds what every /v1 route may answer (401, 429 ...). */
  responses: Record<number, { description: string; schema?: DocSchema }>;
  /** The token scope a /v1 route needs (src/api/auth.ts); a route without one takes no token. */
  scope?: Scope;
}

/** An error answer in the contract's shape. */
export const errorAnswer = (description: string) => ({ description, schema: ref('Error') });
