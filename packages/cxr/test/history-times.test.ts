// One rule for the times of the history: `cxr history --since` (and `history prune --before`) and the API's
// `since` / `until` take the same forms, read them as the same instant, and refuse the same ones with the
// same sentence (serve/date_time.ts readDateTime). The CLI used to refuse a space between date and time
// that the API took, and the API to refuse a bare date that the CLI took.
import { mock, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { register } from '../src/cli/history';
import { buildApp } from '../src/serve/app';
import { auditRecord, serverParts } from './serve-fixtures';

let app: FastifyInstance;

const parts = serverParts('history-times', {
  ready: async ({ predictor, audit }) => {
    // Rows at 00:01, 00:02 and 00:03 on 2026-01-01 (UTC), and one at 23:00 the day before.
    for (const n of [1, 2, 3]) await audit.insert(auditRecord(n), null);
    await audit.insert(auditRecord(4, { createdAt: '2025-12-31T23:00:00.000Z' }), null);
    app = await buildApp({ predictor, audit });
  },
  closing: () => app?.close(),
});

/** `cxr history --json --since VALUE` on the log: the rows it lists, or its error's message. */
async function cli(since: string): Promise<number | string> {
  const program = new Command('cxr').exitOverride();
  register(program);
  const db = path.join(parts.dir, 'audit.db');
  let out = '';
  const write = mock.method(process.stdout, 'write', (chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['history', '--db', db, '--json', '--since', since], { from: 'user' });
  } catch (e) {
    return (e as Error).message;
  } finally {
    write.mock.restore();
  }
  return out.split('\n').filter(Boolean).length;
}

/** GET /api/v1/predictions?NAME=VALUE: its total, or its 400's detail. */
async function api(name: 'since' | 'until', value: string): Promise<number | string> {
  const res = await app.inject(`/api/v1/predictions?${name}=${encodeURIComponent(value)}`);
  const body = res.json();
  if (res.statusCode === 400) return body.detail;
  assert.equal(res.statusCode, 200, `${value}: ${res.body}`);
  return body.total;
}

/** Each value with the rows at or after it, or the sentence that refuses it. */
const CASES: [string, number | RegExp][] = [
  // A bare date: its first moment in UTC (the row at 23:00 the day before is not in it).
  ['2026-01-01', 3],
  ['2025-12-31', 4],
  ['2026-01-01T00:02:00Z', 2],
  // One space instead of the T, as RFC 3339 allows (the CLI refused it).
  ['2026-01-01 00:02:00Z', 2],
  ['2026-01-01t00:02:00z', 2],
  // Offsets: ±hh:mm, and ISO 8601's ±hhmm and ±hh (the API took them, the CLI refused them).
  ['2026-01-01T01:02:00+01:00', 2],
  ['2026-01-01T01:02:00+0100', 2],
  ['2026-01-01T01:02:00+01', 2],
  ['2025-12-31T23:32:00-00:30', 2],
  // Seconds may be left out; a fraction is read to the millisecond.
  ['2026-01-01 01:02+01:00', 2],
  ['2026-01-01T00:02:00.0019Z', 1],
  // Refused by both, with the same words.
  ['2026-01-01T00:02:00', /^has no zone: add Z for UTC or its offset/],
  ['2026-01-01 00:02', /^has no zone/],
  ['2026-01-01  00:02:00Z', /^is not a date \(2026-11-01, its first moment in UTC\) or a date and time with its zone/],
  ['2026-01-01T00:02:00+1', /^is not a date/],
  ['2026-01-01T00:02:00+01:0', /^is not a date/],
  ['20260101', /^is not a date/],
  ['yesterday', /^is not a date/],
  ['2026-02-30', /^is not a real date and time$/],
  ['2026-01-01T24:00:00Z', /^is not a real date and time$/],
  ['2026-01-01T00:02:00+24:00', /^is not a real date and time$/],
  ['2026-12-31T23:59:60Z', /^has second 60 \(a leap second\)/],
];

test('cxr history --since and the API read the same forms as the same instant, and refuse the same ones', async () => {
  for (const [value, expected] of CASES) {
    const [byCli, byApi] = [await cli(value), await api('since', value)];
    if (typeof expected === 'number') {
      assert.deepEqual([byCli, byApi], [expected, expected], value);
      continue;
    }
    assert.equal(typeof byCli, 'string', `${value}: the CLI took it`);
    assert.equal(typeof byApi, 'string', `${value}: the API took it`);
    const cliSays = (byCli as string).replace(`history: --since: ${JSON.stringify(value)} `, '');
    const apiSays = (byApi as string).replace(`query parameter 'since' `, '').replace(/; got ".*"$/, '');
    assert.notEqual(cliSays, byCli, `${value}: the CLI names the option and the value: ${byCli}`);
    assert.match(cliSays, expected, value);
    assert.equal(apiSays, cliSays, value);
  }
});

test("the API's until takes the same forms: a bare date is its first moment, as for since", async () => {
  assert.equal(await api('until', '2026-01-01'), 1);
  assert.equal(await api('until', '2026-01-01 00:02+00:00'), 3);
  assert.equal(await api('until', '2026-01-01T01:01:00+01'), 2);
  assert.match(String(await api('until', '2026-01-01T00:02:00')), /^query parameter 'until' has no zone/);
});
