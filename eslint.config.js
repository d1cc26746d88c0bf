// `npm run lint` (with prettier --check), run first by `npm test`.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
/** What neither workflow nor domain code may import (type imports are fine). */
const SANDBOX_PATHS = [
  ...NODE_BUILTINS.map((name) => ({
    name,
    message: 'no Node built-ins in workflow or domain code (it runs in the workflow sandbox)',
    allowTypeImports: true,
  })),
  { name: 'zod', message: "use 'zod/mini' in workflow and domain code", allowTypeImports: true },
];

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', '.data/', '.scratch/', 'workflow-bundle-*', 'test/fixtures/', 'docs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['**/*.mjs', '**/*.cjs', '**/*.js'], languageOptions: { globals: globals.node } },
  // The console's browser script (served as is, no build step).
  { files: ['static/**/*.js'], languageOptions: { globals: globals.browser, sourceType: 'script' } },
  {
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    // Tests, the bench, chaos and fuzz read raw protocol objects and send control characters on purpose.
    files: ['test/**', 'bench/**', 'chaos/**', 'fuzz/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-control-regex': 'off' },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          caughtErrors: 'none',
        },
      ],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox, and the domain model runs there too
    // (the same pure model serves the workflow and what-if): no I/O, no clients, no classic zod
    // (its schemas carry dozens of methods each; a cached lead must stay small). Types are fine.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...SANDBOX_PATHS,
            ...['@temporalio/client', '@temporalio/worker', '@temporalio/activity'].map((name) => ({
              name,
              message: 'workflow code may not use a Temporal client, worker or activity API',
              allowTypeImports: true,
            })),
          ],
        },
      ],
    },
  },
  {
    // The domain is pure: the same rules, and no Temporal at all.
    files: ['src/domain/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: SANDBOX_PATHS,
          patterns: [
            { group: ['@temporalio/*'], message: 'the domain is pure: no Temporal import', allowTypeImports: true },
          ],
        },
      ],
    },
  },
);
