/** Budgets: each named limit trips with its name; the wall clock restarts after the menu. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Budget, resolveLimits, DEFAULT_LIMITS } from '../src/limits.ts';
import { isTsgrubError } from '../src/errors.ts';

function trips(f: () => void, limit: string): void {
  try {
    f();
  } catch (e) {
    assert.ok(isTsgrubError(e) && e.code === 'LimitExceeded' && e.data.limit === limit, `expected LimitExceeded ${limit}, got ${String(e)}`);
    return;
  }
  assert.fail(`${limit} did not trip`);
}

test('metadata and node budgets trip by name', () => {
  const b = new Budget(resolveLimits({ metadataBytes: 1000, nodesVisited: 10 }));
  b.chargeMetadata(1000);
  trips(() => b.chargeMetadata(1), 'metadataBytes');
  for (let i = 0; i < 10; i++) b.chargeNode();
  trips(() => b.chargeNode(), 'nodesVisited');
});

test('the wall clock trips, and restartClock (time spent in the menu) starts it again', async () => {
  const b = new Budget(resolveLimits({ wallMs: 40 }));
  await new Promise((r) => setTimeout(r, 60));
  trips(() => b.check(), 'wallMs');
  b.restartClock();
  b.check();
});

test('an aborted signal stops the run', () => {
  const ac = new AbortController();
  const b = new Budget(DEFAULT_LIMITS, ac.signal);
  b.check();
  ac.abort();
  trips(() => b.check(), 'aborted');
});

test('overrides must be non-negative integers', () => {
  assert.throws(() => resolveLimits({ fileBytes: -1 }), RangeError);
  assert.throws(() => resolveLimits({ fileBytes: 1.5 }), RangeError);
  assert.equal(resolveLimits({ fileBytes: 16 << 20 }).fileBytes, 16 << 20);
  assert.equal(resolveLimits().configBytes, 1 << 20);
});
