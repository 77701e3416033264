// The browser's reducer (web/js/reducer.js) against the server's fold, for every shipped match:
// `livescore fold <id> --updates` fed through applyUpdate from the match's first state must end
// exactly where `livescore fold <id>` does, field by field. No browser: Node imports the module
// as the browser does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { applyUpdate, initialState } from '../web/js/reducer.js';
import { bin, root } from './support.mjs';

const livescore = (...args) => {
  const run = spawnSync(bin, args, {
    env: { ...process.env, DATA_DIR: `${root}data`, RUST_LOG: 'warn' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(run.status, 0, `livescore ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
};

const games = livescore('games', '--json');

test('the browser reducer folds every shipped match to the server fold, field by field', () => {
  const ids = JSON.parse(games).map((game) => game.id);
  assert.ok(ids.length >= 7, `${ids.length} games`);
  for (const id of ids) {
    const final = JSON.parse(livescore('fold', String(id)));
    const updates = livescore('fold', String(id), '--updates').trim().split('\n').map((line) => JSON.parse(line));
    assert.ok(updates.length > 100, `match ${id}: ${updates.length} updates`);
    const state = initialState(structuredClone(final.info));
    for (const update of updates) applyUpdate(state, update);
    for (const field of Object.keys(final)) {
      assert.deepEqual(state[field], final[field], `match ${id}: ${field}`);
    }
    assert.deepEqual(Object.keys(state).sort(), Object.keys(final).sort(), `match ${id}: the same fields`);
  }
});

test('a change to the reducer is caught: a reducer that drops shots differs', () => {
  const final = JSON.parse(livescore('fold', '7471'));
  const updates = livescore('fold', '7471', '--updates').trim().split('\n').map((line) => JSON.parse(line));
  const state = initialState(structuredClone(final.info));
  for (const update of updates) if (update.type !== 'shot') applyUpdate(state, update);
  assert.notDeepEqual(state.shots, final.shots);
});
