/**
 * The HTML of the pages behind mail links (src/api/routes/links.ts, pages.ts): one shell, one
 * stylesheet allowed by its hash, every value escaped. The CSP (src/api/server.ts) allows no script.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply } from 'fastify';

export const esc = (v: unknown) =>
  String(v ?? '').replace(
    /[&<>"']/g,
    (c) =>
      ({
        '&': '&amp;',
        '<': '&lt;',
        '>': '&gt;',
        '"': '&quot;',
        "'": '&#39;',
      })[c]!,
  );

const STYLE = [
  'body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;color:#222}',
  'table{border-collapse:collapse}td{padding:.2em .8em .2em 0;vertical-align:top}' +
    'form{margin:1em 0;padding:1em;border:1px solid #ccc}',
  'label{display:block;margin:.5em 0}button{font-size:1em;padding:.4em 1.2em}',
].join('\n');
/** The pages' one stylesheet, allowed by its hash: the CSP allows no script and no other inline style. */
export const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

export function page(title: string, body: string): string {
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
      '<meta name="viewport" content="width=device-width,initial-scale=1">',
    `<meta name="robots" content="noindex"><title>${esc(title)}</title>`,
    `<style>${STYLE}</style></head>`,
    `<body><h1>${esc(title)}</h1>${body}</body></html>`,
  ].join('\n');
}

/** A page as the answer, never cached (it shows a lead's data). */
export const htmlPage = (reply: FastifyReply, status: number, title: string, body: string) =>
  reply.status(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page(title, body));
