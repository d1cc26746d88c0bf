/**
 * Test resources held for a suite: opened in a `before` hook of the suite the call is made in,
 * closed in an `after` hook there, read through a handle that can be taken at the top of a file.
 */
import { after, before } from 'node:test';

/**
 * Registers `open()` in a `before` hook and `close` in an `after` hook of the current suite, and
 * returns a handle whose properties read through to what `open` gave, from that hook's end on.
 * Note: Node 20 runs the root suite's `before` hooks at once, side by side (a describe's run one
 * after the other), so a file's own setup on the resource belongs in `open`, not in another hook.
 */
export function useResource<T extends object>(
  what: string,
  open: () => Promise<T>,
  close: (r: T) => Promise<unknown>,
): T {
  let opened: T | undefined;
  before(async () => {
    opened = await open();
  });
  after(async () => {
    if (opened) await close(opened);
  });
  return new Proxy({} as T, {
    get(_, key) {
      if (opened) return Reflect.get(opened, key);
      // Probes (await, inspect) find nothing rather than an error.
      if (typeof key === 'symbol' || key === 'then') return undefined;
      throw new Error(`the ${what} is not open yet (read ${key}): use it in a test or in a hook after its own`);
    },
  });
}
