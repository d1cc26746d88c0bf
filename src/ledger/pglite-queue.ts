/**
 * A fix for @electric-sql/pglite-socket 0.2.17's query queue (upstream issue
 * electric-sql/pglite#1046, fix proposed in #977, neither released): the socket server feeds every
 * client connection's protocol messages to PGlite's one session in arrival order, keeping a
 * connection's messages together only inside a SQL transaction. An extended-protocol query
 * (Parse, Bind, Describe, Execute, Sync) is not in one between its messages, so two connections'
 * queries interleave and one binds to the other's unnamed statement ("bind message supplies 1
 * parameters, but prepared statement requires 6", or silently wrong rows). And a message that
 * throws inside the queue left it marked busy for ever.
 *
 * This replaces the queue's `processQueue` with the same loop that also keeps a connection's
 * messages together from its first extended-protocol message until its Sync (the point where
 * PostgreSQL answers ReadyForQuery), and that always releases the queue. The version is pinned in
 * package.json; test/ledger/embedded-concurrency.test.ts fails if a new one changes this shape.
 */

/** The queue's fields this replacement relies on (private in the library's typings). */
interface QueueInternals {
  queue: {
    handlerId: number;
    message: Uint8Array;
    resolve(n: number): void;
    reject(err: unknown): void;
    onData(d: Uint8Array): void;
  }[];
  processing: boolean;
  lastHandlerId: number | null;
  db: {
    isInTransaction(): boolean;
    runExclusive<T>(fn: () => Promise<T>): Promise<T>;
    execProtocolRawStream(m: Uint8Array, o: { onRawData(d: Uint8Array): void }): Promise<unknown>;
  };
  processQueue(): Promise<void>;
}

const SYNC = 'S'.charCodeAt(0);
/** Parse, Bind, Describe, Execute, Close: the messages of an extended-protocol batch before its Sync. */
const EXTENDED = new Set(['P', 'B', 'D', 'E', 'C'].map((c) => c.charCodeAt(0)));

export function pinExtendedQueries(server: unknown): void {
  const q = (server as { queryQueue?: Partial<QueueInternals> }).queryQueue;
  if (
    !q ||
    !Array.isArray(q.queue) ||
    typeof q.processQueue !== 'function' ||
    !q.db ||
    typeof q.db.execProtocolRawStream !== 'function'
  ) {
    throw new Error(
      '@electric-sql/pglite-socket changed its query queue: review src/ledger/pglite-queue.ts before upgrading',
    );
  }
  const queue = q as QueueInternals;
  /** A connection between an extended-protocol message and its Sync. */
  let openBatch: number | null = null;
  queue.processQueue = async function processQueue(this: QueueInternals) {
    if (this.processing || this.queue.length === 0) return;
    this.processing = true;
    try {
      while (this.queue.length > 0) {
        const pinned = openBatch ?? (this.db.isInTransaction() ? this.lastHandlerId : null);
        let item;
        if (pinned !== null) {
          const i = this.queue.findIndex((x) => x.handlerId === pinned);
          if (i < 0) break; // wait for that connection's next message (enqueue runs the queue again)
          item = this.queue.splice(i, 1)[0]!;
        } else {
          item = this.queue.shift()!;
        }
        const kind = item.message[0]!;
        // (A startup or password message, a Flush or a simple Query neither opens nor closes one.)
        if (EXTENDED.has(kind)) openBatch = item.handlerId;
        else if (kind === SYNC) openBatch = null;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (d) => {
                bytes += d.length;
                item.onData(d);
              },
            }),
          );
        } catch (err) {
          if (openBatch === item.handlerId) openBatch = null;
          item.reject(err);
          continue;
        }
        this.lastHandlerId = item.handlerId;
        item.resolve(bytes);
      }
    } finally {
      this.processing = false;
    }
  };
  // A connection that goes away mid-batch must not hold the queue.
  const clear = (queue as unknown as { clearQueueForHandler?: (id: number) => void }).clearQueueForHandler;
  if (typeof clear === 'function') {
    (queue as unknown as { clearQueueForHandler: (id: number) => void }).clearQueueForHandler = function (
      this: QueueInternals,
      id: number,
    ) {
      if (openBatch === id) openBatch = null;
      clear.call(this, id);
      void this.processQueue();
    };
  }
}
