// Number options are parsed strictly and everywhere alike: a value with trailing junk, a fraction where a
// count is meant, an empty string or an out-of-range size is refused before anything runs, with the option's
// name and what it takes, instead of parseInt/parseFloat quietly reading a prefix (or NaN reaching zod).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { colonFields, intInRange, numberInRange, positiveInt, positiveNumber, wholeNumber } from '../src/cli/args';
import * as evaluate from '../src/cli/evaluate';
import * as gan from '../src/cli/gan';
import * as ood from '../src/cli/ood';
import * as robustness from '../src/cli/robustness';
import * as train from '../src/cli/train';
import { runLikeMain } from './in-process-cli';

const COMMANDS = [evaluate, gan, ood, robustness, train].map((c) => c.register);

function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    return e.message;
  }
  assert.fail('accepted');
}

test('the parsers read whole values only', () => {
  for (const junk of ['', ' ', '3x', '1e-3x', 'NaN', 'Infinity', '1,5', '0x10', '0b11', ' 5 ', '1e']) {
    refusal(() => positiveNumber(junk));
    refusal(() => wholeNumber(junk));
  }
  assert.equal(positiveNumber('1e-3'), 0.001);
  assert.equal(positiveNumber('.5'), 0.5);
  assert.equal(wholeNumber('+3'), 3);
  assert.equal(wholeNumber('0'), 0);
  assert.equal(positiveInt('12'), 12);
  assert.match(
    refusal(() => positiveInt('2.5')),
    /a positive integer/,
  );
  assert.match(
    refusal(() => wholeNumber('-1')),
    /a whole number >= 0/,
  );
  assert.match(
    refusal(() => intInRange(32, 512)('7')),
    /an integer from 32 to 512/,
  );
  assert.equal(intInRange(32, 512)('512'), 512);
  assert.match(
    refusal(() => numberInRange(0, 1, 'both')('1')),
    /a number > 0 and < 1/,
  );
  assert.equal(numberInRange(0, 1, 'low')('1'), 1);
  assert.match(
    refusal(() => numberInRange(0, 1, 'low')('0')),
    /a number > 0 and <= 1/,
  );
  assert.equal(numberInRange(0, 0.5)('0'), 0);
});

test('colon-separated options name the field that is wrong', () => {
  const three = [positiveInt, positiveInt, positiveNumber];
  assert.deepEqual(colonFields('2:4:1e-4', 'blocks:epochs:lr', three), [2, 4, 1e-4]);
  assert.match(
    refusal(() => colonFields('2:4', 'blocks:epochs:lr', three)),
    /expected blocks:epochs:lr, got '2:4'/,
  );
  assert.match(
    refusal(() => colonFields('2:4:1:1', 'blocks:epochs:lr', three)),
    /expected blocks:epochs:lr/,
  );
  assert.match(
    refusal(() => colonFields('2.5:4:1e-4', 'blocks:epochs:lr', three)),
    /blocks of blocks:epochs:lr must be a positive integer, got '2.5'/,
  );
  // Optional trailing fields come back undefined, so the caller's defaults apply.
  assert.deepEqual(colonFields('25', 'window:max:power', three, 2), [25, undefined, undefined]);
});

test('commands refuse a malformed number before they start, naming the option', async () => {
  const cases: [string[], RegExp][] = [
    [['train', '--data', 'x', '--out', 'y', '--lr', '1e-3x'], /'--lr <x>' argument '1e-3x' is invalid\. a positive/],
    [['train', '--data', 'x', '--out', 'y', '--input-size', '7'], /'--input-size <px>' .* an integer from 32 to 512/],
    [['train', '--data', 'x', '--out', 'y', '--fine-tune', '2.5:1:1e-4'], /blocks of blocks:epochs:lr must be/],
    [['train', '--data', 'x', '--out', 'y', '--head-first', '1'], /expected epochs:lr, got '1'/],
    [['train', '--data', 'x', '--out', 'y', '--ema', '1'], /'--ema <decay>' .* a number > 0 and < 1/],
    [['train', '--data', 'x', '--out', 'y', '--mix', 'mixup'], /expected mixup:ALPHA or cutmix:ALPHA/],
    [['train', '--data', 'x', '--out', 'y', '--period-balance', '25:30'], /max of window:max:power must be/],
    [['evaluate', '--data', 'x', '--threads', 'two'], /'--threads <n>' argument 'two' is invalid/],
    [['gan', 'train', '--data', 'x', '--out', 'y', '--epochs', '0'], /'--epochs <n>' .* a positive integer/],
    [['robustness', '--data', 'x', '--strengths', '0.5,'], /strengths in \(0, 1\]/],
    [['ood', 'evaluate', '--data', 'x', '--per-kind', '1001'], /an integer from 1 to 1000/],
  ];
  for (const [args, message] of cases) {
    // In this process: the words are the subject (a child each would cost an engine start).
    const r = await runLikeMain(COMMANDS, args);
    assert.notEqual(r.status, 0, `cxr ${args.join(' ')}`);
    assert.match(r.stderr, message, `cxr ${args.join(' ')}`);
  }
});
