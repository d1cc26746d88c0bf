/**
 * Bundles the workflow code into one file (argv[2]). The worker runs this in a child process so
 * that webpack's few hundred MB never live in the long-running worker's heap.
 */
import { writeFileSync } from 'node:fs';
import { bundleWorkflows } from '../src/worker.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: bundle-workflows.ts OUT.js');
  process.exit(2);
}
writeFileSync(out, (await bundleWorkflows()).code);
