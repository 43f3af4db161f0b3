// The engine child gets the server's Node flags less the test runner's, inspector's and watcher's. A flag's value
// given as the next word (`node --test-name-pattern foo`, how people type it) was left behind: the engine took
// `foo` for its script and exited while loading the model ("the prediction engine stopped while loading").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childExecArgv } from '../src/serve/engine_process';

test("the engine is started without the server's own flags, nor their values", () => {
  assert.deepEqual(
    childExecArgv([
      '--max-old-space-size=4096',
      '--test-name-pattern',
      'kill',
      '--inspect=9229',
      '--test-reporter',
      'spec',
      '--enable-source-maps',
      '--watch',
      '--stack-size=2000',
    ]),
    ['--max-old-space-size=4096', '--enable-source-maps', '--stack-size=2000'],
  );
  assert.deepEqual(childExecArgv(['--test', '--expose-gc']), ['--expose-gc']);
  assert.deepEqual(childExecArgv(['--test-name-pattern=a b', '--no-warnings']), ['--no-warnings']);
});
