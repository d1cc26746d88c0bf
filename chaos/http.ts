/**
 * The suites' HTTP client: every request has a timeout, and retries are bounded (a client that
 * retries for ever hides the failures the suites are there to count). Every answer's status is
 * tallied, every 5xx kept with its route.
 */
export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export interface Tally {
  byStatus: Record<string, number>;
  fiveXx: { at: number; method: string; path: string; status: number; code?: string }[];
  networkErrors: number;
}

export const newTally = (): Tally => ({ byStatus: {}, fiveXx: [], networkErrors: 0 });

export interface RequestOptions {
  method?: string;
  body?: unknown;
  token?: string;
  /** Attempts in all (default 1: no retry). Retried: network errors, 5xx, 429. */
  attempts?: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** A raw body sent as it is (the fuzzer). */
  raw?: string | Buffer;
}

export class Http {
  constructor(
    readonly base: string,
    readonly token: string,
    readonly tally: Tally = newTally(),
  ) {}

  async request(path: string, o: RequestOptions = {}): Promise<Answer | undefined> {
    const attempts = o.attempts ?? 1;
    const method = o.method ?? (o.body === undefined && o.raw === undefined ? 'GET' : 'POST');
    for (let i = 1; ; i++) {
      let answer: Answer | undefined;
      try {
        const r = await fetch(this.base + path, {
          method,
          headers: {
            ...(o.token !== '' ? { authorization: `Bearer ${o.token ?? this.token}` } : {}),
            ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...o.headers,
          },
          body: (o.raw ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined)) as BodyInit | undefined,
          redirect: 'manual',
          signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
        });
        const text = await r.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        answer = { status: r.status, body, headers: r.headers };
        this.tally.byStatus[r.status] = (this.tally.byStatus[r.status] ?? 0) + 1;
        if (r.status >= 500)
          this.tally.fiveXx.push({
            at: Date.now(),
            method,
            path: path.split('?')[0]!.slice(0, 120),
            status: r.status,
            code: (body as { error?: { code?: string } })?.error?.code,
          });
      } catch {
        this.tally.networkErrors++;
        this.tally.byStatus.network = (this.tally.byStatus.network ?? 0) + 1;
      }
      const retry = !answer || answer.status >= 500 || answer.status === 429;
      if (!retry || i >= attempts) return answer;
      const retryAfter = Number(answer?.headers.get('retry-after'));
      const backoff = Math.min(8_000, 250 * 2 ** (i - 1)) * (0.5 + Math.random());
      await new Promise((r) =>
        setTimeout(r, Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 10_000) : backoff),
      );
    }
  }
}
