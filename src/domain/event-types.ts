/**
 * Event types: the one definition of their syntax and of the built-in ones. The config names the
 * scored types (scoring.behavior); the built-in consent types need no config.
 */
export const EVENT_TYPE_RE = /^[a-z][a-z0-9_]{0,63}$/;
export const EVENT_TYPE_RULE = 'must be a lower_snake_case event type (a-z, 0-9, _; at most 64 characters)';

export const UNSUBSCRIBE = 'unsubscribe';
export const HARD_BOUNCE = 'hard_bounce';
/** Consent events every lead takes, whatever its config scores. */
export const BUILTIN_EVENT_TYPES = [UNSUBSCRIBE, HARD_BOUNCE] as const;
