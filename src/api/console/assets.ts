/**
 * The console's static files, served by the API so that no page needs the internet: its own
 * stylesheet and script (static/) and Chart.js from its npm package. Read once at start-up, sent
 * with an ETag and a day's caching (the pages themselves are never cached).
 */
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const staticFile = (name: string) => fileURLToPath(new URL(`../../../static/${name}`, import.meta.url));
const FILES: Record<string, { path: () => string; type: string }> = {
  'console.css': { path: () => staticFile('console.css'), type: 'text/css; charset=utf-8' },
  'console.js': { path: () => staticFile('console.js'), type: 'text/javascript; charset=utf-8' },
  'chart.umd.min.js': {
    // The package exports only its modules; the browser build sits beside its main file in dist/.
    path: () => join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

export function assetRoutes(app: FastifyInstance): void {
  const loaded = new Map(
    Object.entries(FILES).map(([name, f]) => {
      const body = readFileSync(f.path());
      return [name, { body, type: f.type, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` }];
    }),
  );
  app.get<{ Params: { name: string } }>('/console/assets/:name', async (req, reply) => {
    const f = loaded.get(req.params.name);
    if (!f)
      return reply.status(404).send({ error: { code: 'route_not_found', message: `no asset ${req.params.name}` } });
    reply.header('etag', f.etag).header('cache-control', 'public, max-age=86400');
    if (req.headers['if-none-match'] === f.etag) return reply.status(304).send();
    return reply.type(f.type).send(f.body);
  });
}
