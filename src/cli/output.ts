/** How leadctl prints: aligned tables, signed points, and lead data made safe for a terminal. */
import { CONTROL_CHARS } from '../domain/lead.js';

/** Rows under a header, columns padded to their widest cell; an empty cell is `-`. */
export function table(rows: (string | number | undefined | null)[][], header: string[]): string {
  const cell = (c: string | number | undefined | null) => (c === undefined || c === null || c === '' ? '-' : String(c));
  const cells = [header, ...rows.map((r) => r.map(cell))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ');
  return cells.map(line).join('\n');
}

export const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/**
 * Terminal output shows control characters as `\uXXXX`: a lead's data (a profile recorded before
 * the schema refused them, a field name, a note) must not move the cursor, rewrite earlier lines
 * or reorder text on an operator's screen; `--json` escapes them the JSON way.
 */
const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
export const visible = (text: string) => text.replace(new RegExp(CONTROL_CHARS.source, 'g'), escapeChar);
/** JSON.stringify escapes C0 controls itself (and its own newlines are the layout); the rest are escaped here. */
export const visibleJson = (value: unknown) =>
  JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, escapeChar);
