/**
 * The lint rule that keeps workflow and domain code sandbox-safe (eslint.config.js) is there and
 * bites: `npm run lint` holds it, this test holds the rule itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: process.cwd() });
const problems = async (filePath: string, code: string) =>
  (await eslint.lintText(code, { filePath }))[0]!.messages.map((m) => `${m.ruleId}: ${m.message}`);

const FORBIDDEN = [
  "import { readFileSync } from 'node:fs';",
  "import { z } from 'zod';",
  "import { Client } from '@temporalio/client';",
  "import { Worker } from '@temporalio/worker';",
  "import { Context } from '@temporalio/activity';",
];

describe('the sandbox lint rule', () => {
  for (const dir of ['workflows', 'src/domain']) {
    it(`refuses Node built-ins, classic zod and Temporal clients, workers and activities in ${dir}/`, async () => {
      for (const line of FORBIDDEN) {
        const found = await problems(
          `${dir}/probe.ts`,
          `${line}\nexport const used = [${line.match(/\{ (\w+) \}/)![1]}];\n`,
        );
        assert.ok(
          found.some((p) => p.startsWith('@typescript-eslint/no-restricted-imports')),
          `${dir}: ${line} -> ${found}`,
        );
      }
    });
    it(`lets ${dir}/ import types, and zod/mini`, async () => {
      const ok =
        "import type { Client } from '@temporalio/client';\nimport * as z from 'zod/mini';\nexport type C = Client;\nexport const s = z.string();\n";
      assert.deepEqual(await problems(`${dir}/probe.ts`, ok), []);
    });
  }
  it('keeps the workflow API out of the domain only', async () => {
    const code = "import { sleep } from '@temporalio/workflow';\nexport const s = sleep;\n";
    assert.deepEqual(await problems('workflows/probe.ts', code), []);
    assert.match((await problems('src/domain/probe.ts', code)).join('\n'), /the domain is pure/);
  });
  it('does not apply elsewhere (activities may do I/O)', async () => {
    assert.deepEqual(
      await problems(
        'activities/probe.ts',
        "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n",
      ),
      [],
    );
  });
});
