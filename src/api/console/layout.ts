/**
 * The console's page shell: one stylesheet and one script, both files served by the API
 * (src/api/console/assets.ts), so the console's CSP allows scripts and styles from 'self' only
 * and no inline script or style at all. Data a chart draws travels as a JSON data block
 * (`<script type="application/json">`, never executed), written with jsonBlock so that no
 * profile value can close the block. Every value in markup goes through esc.
 */
import type { FastifyReply } from 'fastify';
import { esc } from '../html.js';
import type { Session } from './session.js';

export { esc };

/** The console's Content-Security-Policy: nothing inline, nothing from elsewhere. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export type View = 'funnel' | 'leads' | 'queue' | 'models';
const NAV: [View, string, string][] = [
  ['funnel', '/console/funnel', 'Funnel'],
  ['leads', '/console/leads', 'Leads'],
  ['queue', '/console/queue', 'Sales queue'],
  ['models', '/console/models', 'Models'],
];

/** A JSON data block for console.js; `<` is escaped so a value cannot end the element. */
export const jsonBlock = (id: string, data: unknown) =>
  `<script type="application/json" id="${esc(id)}">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>`;

export interface PageOptions {
  title: string;
  body: string;
  session?: Session;
  view?: View;
  /** Loads Chart.js before console.js. */
  charts?: boolean;
}

export function consolePage(o: PageOptions): string {
  const nav = o.session
    ? `<nav>${NAV.map(
        ([v, href, label]) => `<a href="${href}"${v === o.view ? ' aria-current="page"' : ''}>${label}</a>`,
      ).join('')}<span class="who">${esc(o.session.owner ?? o.session.scope)}</span>` +
      '<form method="post" action="/console/logout"><button type="submit">Sign out</button></form></nav>'
    : '';
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">',
    `<title>${esc(o.title)} · Lead console</title><link rel="stylesheet" href="/console/assets/console.css">`,
    o.charts ? '<script src="/console/assets/chart.umd.min.js" defer></script>' : '',
    '<script src="/console/assets/console.js" defer></script></head>',
    `<body><header><strong>Lead console</strong>${nav}</header><main><h1>${esc(o.title)}</h1>${o.body}</main></body></html>`,
  ].join('\n');
}

/** A console page as the answer: never cached (it shows leads' data), under the console's CSP. */
export function sendPage(reply: FastifyReply, o: PageOptions, status = 200) {
  return (
    reply
      .status(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', CONSOLE_CSP)
      // Same-origin posts then carry their Origin (under no-referrer a browser sends `null`), which
      // the console checks; other sites still get no Referer.
      .header('referrer-policy', 'same-origin')
      .send(consolePage(o))
  );
}

/** A table of rows of already-escaped cells. */
export const table = (head: string[], rows: string[][], cls = '') =>
  `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` +
  `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;

/** Problems with their paths, as a list (a refused form, a config that fails validation). */
export const problemList = (problems: { path: string; message: string }[]) =>
  `<ul class="problems">${problems.map((p) => `<li><code>${esc(p.path)}</code>: ${esc(p.message)}</li>`).join('')}</ul>`;

export const pct = (x: number | null | undefined) =>
  x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)} %`;
