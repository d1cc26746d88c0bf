/**
 * The profile's bound (CONTRACT.md §Security), as plain functions: the schemas of lead.ts check it
 * at every entry point, and the workflow's applyProfile (lifecycle.ts) checks the merged profile with
 * it. No zod here: lifecycle.ts is a module the worker shares and freezes (src/worker.ts), and zod
 * would not survive that.
 */

/**
 * Characters no text the engine keeps may hold: C0 controls (CR, LF, NUL, tab), DEL, C1, the
 * Unicode line and paragraph separators and the bidi overrides. The schemas refuse them
 * (lead.ts), mail text turns them into spaces (mail.ts), `leadctl show` escapes them.
 */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** CONTRACT.md §Security: a profile holds at most 100 fields and 16 KB (its JSON, UTF-8). */
export const PROFILE_LIMITS = { fields: 100, bytes: 16 * 1024 } as const;

/** UTF-8 length without Buffer or TextEncoder (this module also runs in the workflow sandbox). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Why a profile is over the bound (a sentence), or undefined when it is within it. Pure, deterministic. */
export function profileLimitProblem(profile: Record<string, unknown>): string | undefined {
  const fields = Object.keys(profile).length;
  if (fields > PROFILE_LIMITS.fields)
    return `a profile holds at most ${PROFILE_LIMITS.fields} fields, this one has ${fields}`;
  const bytes = utf8Length(JSON.stringify(profile));
  if (bytes > PROFILE_LIMITS.bytes)
    return `a profile holds at most ${PROFILE_LIMITS.bytes} bytes of JSON, this one has ${bytes}`;
  return undefined;
}

/** The one bound check: the API (through the schemas below) and the workflow's applyProfile call it. */
export const profileWithinLimits = (profile: Record<string, unknown>): boolean =>
  profileLimitProblem(profile) === undefined;
