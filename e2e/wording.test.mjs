// The UI's wording that needs no browser: counts of viewers as the server pushes them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asShown, watchingText } from '../web/js/wording.js';

test('viewer counts read to two significant figures, as the server sends them', () => {
  // The same table as api/src/presence.rs's counts_are_shown_to_two_significant_figures.
  for (const [count, shown] of [[0, 0], [7, 7], [99, 99], [100, 100], [123, 120], [1_234, 1_200],
    [35_071, 35_000], [1_999_999, 1_900_000]]) {
    assert.equal(asShown(count), shown, `${count}`);
  }
  assert.equal(watchingText(12), '12 watching');
  assert.equal(watchingText(35_071), '35,000 watching');
});
