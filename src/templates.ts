/**
 * Email templates: one YAML file per template id under the configured folder, with Handlebars
 * `subject`, `html` and `text` parts, and `link`, the page a nurture mail's tracked click leads to. Compiled once at start; a missing or broken template fails
 * configuration, not a send.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import Handlebars from 'handlebars';
import { parse } from 'yaml';
import { z } from 'zod';

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const templateFileSchema = z
  .object({
    subject: z.string().min(1),
    html: z.string().min(1),
    text: z.string().min(1),
    /** Where `{{links.click}}` goes: the tracked redirect records the click, then sends the reader here. */
    link: httpUrl.optional(),
  })
  .strict()
  .refine((t) => t.link !== undefined || !/links\.click/.test(t.html + t.text), {
    path: ['link'],
    message: 'the template uses {{links.click}}: give the page it leads to (link: https://…)',
  });

type Compiled = {
  subject: HandlebarsTemplateDelegate;
  html: HandlebarsTemplateDelegate;
  text: HandlebarsTemplateDelegate;
};
export interface Templates {
  sources: Record<string, z.infer<typeof templateFileSchema>>;
  render(id: string, data: object): { subject: string; html: string; text: string };
}

const hbs = Handlebars.create();
hbs.registerHelper('default', (value: unknown, fallback: unknown) =>
  value === undefined || value === null || value === '' ? fallback : value,
);

/** Compiles one template's parts (eagerly, so syntax errors surface at start). */
function compile(source: z.infer<typeof templateFileSchema>): Compiled {
  const c = {
    subject: hbs.compile(source.subject, { noEscape: true, strict: false }),
    html: hbs.compile(source.html),
    text: hbs.compile(source.text, { noEscape: true }),
  };
  c.subject({});
  c.html({});
  c.text({});
  return c;
}

function templatesOf(sources: Templates['sources'], compiled: Record<string, Compiled>): Templates {
  return {
    sources,
    render(id, data) {
      const t = compiled[id];
      if (!t) throw new Error(`template "${id}" not found`);
      return { subject: t.subject(data).trim(), html: t.html(data), text: t.text(data) };
    },
  };
}

/** Templates from sources kept elsewhere (a rolled-out config in the ledger carries its own). */
export function templatesFromSources(raw: unknown): Templates {
  const sources = z.record(z.string(), templateFileSchema).parse(raw);
  return templatesOf(sources, Object.fromEntries(Object.entries(sources).map(([id, src]) => [id, compile(src)])));
}

export function loadTemplates(
  dir: string,
  required: { id: string; path: string }[],
): { templates: Templates; problems: { path: string; message: string }[] } {
  const problems: { path: string; message: string }[] = [];
  const sources: Templates['sources'] = {};
  const compiled: Record<string, Compiled> = {};
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
  if (!existsSync(dir)) problems.push({ path: 'email.templates', message: `folder ${dir} not found` });
  for (const f of files) {
    const id = basename(f, '.yaml');
    try {
      const parsed = templateFileSchema.safeParse(parse(readFileSync(join(dir, f), 'utf8')));
      if (!parsed.success) {
        parsed.error.issues.forEach((i) =>
          problems.push({ path: `templates/${f}: ${i.path.join('.') || '(root)'}`, message: i.message }),
        );
        continue;
      }
      compiled[id] = compile(parsed.data);
      sources[id] = parsed.data;
    } catch (err) {
      problems.push({ path: `templates/${f}`, message: (err as Error).message.split('\n')[0]! });
    }
  }
  for (const r of required) {
    if (!sources[r.id] && !problems.some((p) => p.path.startsWith(`templates/${r.id}.yaml`))) {
      problems.push({ path: r.path, message: `template "${r.id}" not found (expected ${join(dir, `${r.id}.yaml`)})` });
    }
  }
  return { problems, templates: templatesOf(sources, compiled) };
}
