/**
 * The address-level suppression list's input (CONTRACT.md "Integrations": `/v1/suppressions`,
 * `leadctl suppress`): one schema for the API and leadctl, so both refuse the same input naming the
 * same field. Addresses are stored normalized (src/ledger/ledger.ts normalizeAddress).
 */
import { z } from 'zod';
import { CONTROL_CHARS } from './domain/lead.js';

export const MAX_ADDRESS = 320;
export const MAX_REASON = 200;
/** The reason an entry added by hand (API, leadctl) gets when none is given. */
export const MANUAL_REASON = 'manual';

export const suppressionAddressSchema = z
  .string({ error: 'required: an email address' })
  .trim()
  .max(MAX_ADDRESS, `must be at most ${MAX_ADDRESS} characters`)
  .pipe(z.email({ error: 'must be an email address' }));

export const suppressionInputSchema = z
  .object({
    email: suppressionAddressSchema,
    reason: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .max(MAX_REASON, `must be at most ${MAX_REASON} characters`)
      .refine((v) => !CONTROL_CHARS.test(v), 'must not contain control characters')
      .optional(),
  })
  .strict();
export type SuppressionInput = z.output<typeof suppressionInputSchema>;
