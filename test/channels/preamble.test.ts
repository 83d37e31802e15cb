// The TCP pre-handshake parser (PROTOCOL 9), line by line: what is accepted and what is refused.
import { PassThrough } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { authLine, parseAuthLine, parseVerdict, readLine, tokenMatches, verdictLine } from '../../channels/tcp/preamble.js';

const T = 'abcdefghijklmnop';

test('auth lines', () => {
  const cases: Array<[string, unknown]> = [
    [`QCOP-AUTH 1 ${T}`, { ok: true, version: 1, token: T }],
    ['QCOP-AUTH 1 -', { ok: true, version: 1, token: undefined }],
    ['QCOP-AUTH 2 -', { ok: true, version: 2, token: undefined }],
    ['QCOP-AUTH 1 short', { ok: false, why: 'malformed token' }],
    [`QCOP-AUTH 1 ${T} extra`, { ok: false, why: 'the first line is not QCOP-AUTH <version> <token>' }],
    [`qcop-auth 1 ${T}`, { ok: false, why: 'the first line is not QCOP-AUTH <version> <token>' }],
    ['', { ok: false, why: 'the first line is not QCOP-AUTH <version> <token>' }],
    ['\x10\x00\x00\x00\x01', { ok: false, why: 'the first line is not QCOP-AUTH <version> <token>' }],
  ];
  for (const [line, want] of cases) assert.equal(parseAuthLine(line), want, JSON.stringify(line));
  assert.is(authLine(undefined), 'QCOP-AUTH 1 -\n');
  assert.equal(parseAuthLine(authLine(T).trimEnd()), { ok: true, version: 1, token: T });
});

test('verdict lines round-trip; anything else is EPROTO', () => {
  assert.equal(parseVerdict(verdictLine({ ok: true }).trimEnd()), { ok: true });
  assert.equal(parseVerdict(verdictLine({ ok: false, code: 'EACCES', text: 'wrong\ntoken' }).trimEnd()), { ok: false, code: 'EACCES', text: 'wrong token' });
  assert.is((parseVerdict('HTTP/1.1 400 Bad Request') as { code: string }).code, 'EPROTO');
});

test('tokens compare by value only', () => {
  assert.ok(tokenMatches(T, T));
  assert.not.ok(tokenMatches(T + 'x', T));
  assert.not.ok(tokenMatches(undefined, T));
});

test('readLine: keeps the bytes after the LF, refuses over-long lines and silence', async () => {
  const s = new PassThrough();
  const p = readLine(s, 1000);
  s.write('QCOP-OK\r');
  s.write('\nrest');
  const got = await p;
  assert.is(got.line, 'QCOP-OK');
  assert.is(got.rest.toString(), 'rest');
  const long = new PassThrough();
  const q = readLine(long, 1000);
  long.write('x'.repeat(600));
  await q.then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /longer than 512/));
  await readLine(new PassThrough(), 50).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /within 50 ms/));
});

test.run();
