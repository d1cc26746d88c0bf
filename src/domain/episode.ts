/**
 * A handoff episode: one sql entry of a lead (its becameSqlAt) and one escalation within it. The
 * handoff mail's sales links carry it (`m`), so a link decides only the handoff it came in.
 * Written by the handoff activity, read by the API's sales links: one format, here.
 */
export interface Episode {
  sqlAt: string;
  escalation: number;
}

/** `<becameSqlAt>:<escalation>` ('sql' for a lead with no sql date). */
export function formatEpisode(becameSqlAt: string | undefined, escalation: number): string {
  return `${becameSqlAt ?? 'sql'}:${escalation}`;
}

/** The episode a link's `m` names, or undefined when it names none. */
export function parseEpisode(m?: string): Episode | undefined {
  const i = m ? m.lastIndexOf(':') : -1;
  if (!m || i <= 0) return undefined;
  const escalation = Number(m.slice(i + 1));
  return Number.isInteger(escalation) ? { sqlAt: m.slice(0, i), escalation } : undefined;
}
