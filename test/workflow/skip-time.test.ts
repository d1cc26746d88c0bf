/**
 * skipTime, the guard every time-skipping test uses: a skip the server cannot make (time skipping
 * locked, as a leaked lock leaves it) fails within its limit instead of waiting in real time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useStack } from '../helpers/stack.js';
import { skipTime } from '../helpers/temporal.js';

const stack = useStack({ server: 'time-skipping', smtp: false });

test('a skip the server can make moves server time at once', async () => {
  const t0 = await stack.env.currentTimeMs();
  await skipTime(stack.env, '30d', 10_000);
  assert.ok((await stack.env.currentTimeMs()) - t0 >= 30 * 86_400_000);
});

test('a skip while time skipping is locked fails within the limit, naming the cause', async () => {
  await stack.env.connection.testService!.lockTimeSkipping({});
  const started = Date.now();
  await assert.rejects(skipTime(stack.env, '1d', 1_000), /took over 1000 ms of real time: time skipping is locked/);
  assert.ok(Date.now() - started < 10_000);
  // Released, the pending skip completes and time moves again.
  await stack.env.connection.testService!.unlockTimeSkipping({});
  const t0 = await stack.env.currentTimeMs();
  await skipTime(stack.env, '2d', 10_000);
  assert.ok((await stack.env.currentTimeMs()) - t0 >= 2 * 86_400_000);
});
