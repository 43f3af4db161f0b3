// oodPolicy 'refuse': the InputError NOT_A_CHEST_XRAY carries the gate's reason codes, the same the 'warn' answer
// gives in verdict.reasons, so that a program tells an adult's film ('AGE', 'OOD') from a photo ('COLOUR')
// without reading the message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { InputError } from '../src/predict/errors';
import { Predictor } from '../src/predict/predictor';
import { DICOM_DIR, makeTinyModel, tempDir } from './serve-fixtures';

let root = '';
let modelDir = '';

before(async () => {
  root = tempDir('refuse-reasons');
  modelDir = await makeTinyModel(path.join(root, 'model'));
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

/** The codes of the 'warn' answer and of the 'refuse' error for the same bytes. */
async function bothAnswers(dir: string, bytes: Buffer): Promise<{ warned: string[]; refused: InputError }> {
  const warn = await Predictor.load(dir, { warmUp: false });
  const refuse = await Predictor.load(dir, { oodPolicy: 'refuse', warmUp: false });
  try {
    const answer = await warn.predict(bytes);
    const refused = await refuse.predict(bytes).then(
      () => assert.fail('refuse accepted it'),
      (e: unknown) => e,
    );
    assert.ok(refused instanceof InputError, String(refused));
    return { warned: answer.verdict.reasons.map((r) => r.code), refused };
  } finally {
    warn.dispose();
    refuse.dispose();
  }
}

test('a refused blank image and a refused colour photo each carry their own reason codes', async () => {
  const blank = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const photo = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#d02020' } })
    .composite([
      {
        input: await sharp({ create: { width: 150, height: 300, channels: 3, background: '#20a040' } })
          .png()
          .toBuffer(),
        left: 0,
        top: 0,
      },
    ])
    .png()
    .toBuffer();
  const seen: string[][] = [];
  for (const bytes of [blank, photo]) {
    const { warned, refused } = await bothAnswers(modelDir, bytes);
    assert.equal(refused.code, 'NOT_A_CHEST_XRAY');
    assert.ok(warned.length > 0, 'the warn answer has reasons');
    assert.deepEqual([...refused.reasons], warned, 'the codes of the warn answer');
    seen.push(warned);
  }
  assert.ok(seen[1].includes('COLOUR'), `photo: ${seen[1]}`);
  assert.notDeepEqual(seen[0], seen[1], 'a blank and a photo are told apart');
});

const ADULT = path.join(DICOM_DIR, 'WG04_RG1_JLSN.dcm');
const SHIPPED = path.resolve(__dirname, '..', '..', '..', '..', 'models', 'default');

test("a real adult's film refused by the shipped model says AGE and OOD", {
  skip: !fs.existsSync(ADULT) || !fs.existsSync(path.join(SHIPPED, 'ood.json')),
}, async () => {
  const { warned, refused } = await bothAnswers(SHIPPED, fs.readFileSync(ADULT));
  assert.equal(refused.code, 'NOT_A_CHEST_XRAY');
  assert.deepEqual([...refused.reasons], warned);
  assert.ok(refused.reasons.includes('AGE') && refused.reasons.includes('OOD'), String(refused.reasons));
});

test('other input errors have no reasons', async () => {
  const p = await Predictor.load(modelDir, { warmUp: false });
  try {
    await assert.rejects(p.predict(Buffer.from('not an image')), (e: InputError) => {
      assert.equal(e.code, 'UNSUPPORTED_FORMAT');
      assert.deepEqual(e.reasons, []);
      return true;
    });
  } finally {
    p.dispose();
  }
});
