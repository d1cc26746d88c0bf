/**
 * The built-in event types: consent events every lead takes, whatever its config scores (the
 * config names the scored ones, scoring.behavior). Their syntax is in syntax.ts.
 */
export const UNSUBSCRIBE = 'unsubscribe';
export const HARD_BOUNCE = 'hard_bounce';
export const BUILTIN_EVENT_TYPES = [UNSUBSCRIBE, HARD_BOUNCE] as const;
