#!/usr/bin/env node
// leadctl: runs src/cli/leadctl.ts through tsx (a runtime dependency), so `npx leadctl …` works
// in the repo without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/leadctl.ts');
const code = await main(process.argv);
process.exit(code);
