/**
 * Small measurement helpers the phases share: worker and server CPU seconds between two marks,
 * rounding for the report, and a seeded sample of a list.
 */
import { cpuSeconds } from './proc.js';
import type { Stack } from './harness.js';

// ---- measurements ---------------------------------------------------------------------------

export interface CpuMark {
  worker: number;
  server: number;
  t: number;
}
export const cpuMark = (s: Stack): CpuMark => ({
  worker: cpuSeconds(s.worker.pid) ?? 0,
  server: cpuSeconds(s.server.pid) ?? 0,
  t: performance.now(),
});
export const cpuSince = (s: Stack, m: CpuMark) => {
  const now = cpuMark(s);
  return {
    worker: round(now.worker - m.worker, 2),
    server: round(now.server - m.server, 2),
    seconds: round((now.t - m.t) / 1000, 2),
  };
};
export const round = (x: number, digits = 1) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export function sample<T>(xs: T[], n: number, r: () => number): T[] {
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, n);
}
