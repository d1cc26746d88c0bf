/**
 * The syntax of the identifiers and values that both the config (src/domain/config.ts) and the
 * public inputs (src/domain/lead.ts) check: one rule each, with the reason an error gives.
 *
 * Not for the worker's shared workflow modules (src/worker.ts SHARED_WORKFLOW_MODULES, e.g. the
 * model): those are frozen, and zod resets a RegExp's lastIndex, which a frozen RegExp refuses.
 */

/** An event type (CONTRACT.md LeadEvent.type, the config's scoring.behavior keys). */
export const EVENT_TYPE_RE = /^[a-z][a-z0-9_]{0,63}$/;
export const EVENT_TYPE_RULE = 'must be a lower_snake_case event type (a-z, 0-9, _; at most 64 characters)';

/** A template id: the file name of templates/<id>.{subject,html,text}.hbs without its extension. */
export const TEMPLATE_ID_RE = /^[a-z0-9][a-z0-9_-]*$/;
export const TEMPLATE_ID_RULE = 'must be a template id (file name without extension: a-z, 0-9, _ and -)';

export const TIME_ZONE_RULE = 'must be an IANA time zone like America/New_York';
/** Whether the runtime knows the IANA time zone. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
