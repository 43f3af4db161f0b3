// A tokens file entry written the wrong way round (TOKEN:name). A reviewer found that the secret was either
// printed in the refusal (`the token of '<secret>' must be ...`, a fatal log line of cxr serve) or, with a name of
// 8 characters or more, taken: the guessable word became the bearer token and the secret a name, stored in
// requestedBy and answered by GET /api/v1/token. Now a name that looks like a generated secret is refused, and a
// refused name is never quoted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { ApiTokenError, parseTokenList } from '../src/serve/auth';

const SECRET = crypto.randomBytes(32).toString('hex'); // `openssl rand -hex 32`

function refusal(text: string): ApiTokenError {
  try {
    parseTokenList(text, 'tokens.txt');
  } catch (e) {
    assert.ok(e instanceof ApiTokenError, String(e));
    return e;
  }
  assert.fail(`taken: ${text.replace(SECRET, '<secret>')}`);
}

test('TOKEN:name is refused, and the secret is in no message', () => {
  for (const line of [`${SECRET}:ward-night`, `${SECRET}:alice`, `${SECRET}[jobs]:ward-night`]) {
    const e = refusal(line);
    assert.equal(e.code, 'BAD_NAME');
    assert.ok(!e.message.includes(SECRET.slice(0, 8)), e.message);
    assert.match(e.message, /TOKEN:name\? Write name:TOKEN/);
  }
  // A base64 secret (+, /, =) fails the name's characters: refused, not quoted either.
  const b64 = crypto.randomBytes(32).toString('base64');
  const e = refusal(`${b64}:ward-night`);
  assert.equal(e.code, 'BAD_NAME');
  assert.ok(!e.message.includes(b64.slice(0, 8)), e.message);
});

test('the right way round is taken, with names of every allowed kind', () => {
  assert.deepEqual(parseTokenList(`ward-night:${SECRET}\nradiology.ws-3@site:${SECRET.slice(0, 40)}x`, 'f'), [
    { name: 'ward-night', token: SECRET },
    { name: 'radiology.ws-3@site', token: `${SECRET.slice(0, 40)}x` },
  ]);
  // A short hex name (a ward number, a badge id) is a name, not a secret.
  assert.equal(parseTokenList(`c0ffee42:${SECRET}`, 'f')[0].name, 'c0ffee42');
});
