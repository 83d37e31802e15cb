// Channel, pattern and message name rules (SPEC §1, PROTOCOL 4) and strict UTF-8 decoding of wire names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { channelProblem, decodeName, isPattern, messageProblem } from '../../../runtime/protocol/names.js';

const VALID_CHANNELS: Array<[string, string]> = [
  ['one segment', 'QPE'],
  ['Qt system channel', 'QPE/System'],
  ['three segments with a digit', 'sensors/imu/0'],
  ['Qt test-style name with colons and parentheses', 'tst_QcopChannel::send()'],
  ['a single character', 'a'],
  ['exactly 255 ASCII bytes', 'a'.repeat(255)],
  ['255 bytes of two-byte characters plus one', 'é'.repeat(127) + 'e'],
  ['spaces inside', 'my channel/with spaces'],
  ['non-ASCII letters', 'café/日本語'],
  ['an astral character (surrogate pair)', 'emoji/😀'],
  ['a pattern with a star', 'QPE/*'],
  ['a lone star', '*'],
  ['a pattern with a set', 'dev/[a-z]*'],
  ['DEL-adjacent printable characters', '~/!'],
  ['a no-break space (U+00A0, first after C1)', 'a\u00a0b'],
];

const INVALID_CHANNELS: Array<[string, unknown, RegExp]> = [
  ['empty', '', /empty/],
  ['256 ASCII bytes', 'a'.repeat(256), /256 bytes/],
  ['256 bytes of two-byte characters', 'é'.repeat(128), /256 bytes/],
  ['a NUL byte', 'a\0b', /control/],
  ['a newline', 'a\nb', /control/],
  ['a tab', 'a\tb', /control/],
  ['an escape character', 'a\x1bb', /control/],
  ['DEL', 'a\x7fb', /control/],
  ['a C1 control character (U+0085)', 'a\u0085b', /control/],
  ['an empty segment', 'a//b', /empty segment/],
  ['a leading slash', '/a', /empty segment/],
  ['a trailing slash', 'a/', /ends with/],
  ['a lone slash', '/', /empty segment|ends with/],
  ['a lone high surrogate', 'a\ud800b', /surrogate/],
  ['a lone low surrogate', 'a\udc00b', /surrogate/],
  ['a high surrogate at the end', 'ab\ud83d', /surrogate/],
  ['two low surrogates', '\udc00\udc00', /surrogate/],
  ['a pattern with an empty segment', 'QPE//*', /empty segment/],
  ['not a string', 42, /string/],
];

for (const [what, name] of VALID_CHANNELS) {
  test(`a channel with ${what} is valid`, () => {
    assert.is(channelProblem(name), null);
  });
}

for (const [what, name, why] of INVALID_CHANNELS) {
  test(`a channel with ${what} is refused`, () => {
    const problem = channelProblem(name as string);
    assert.ok(problem, 'expected a problem');
    assert.match(problem!, why);
  });
}

test('the problem text names the field it was asked about', () => {
  assert.match(channelProblem('', 'pattern')!, /^pattern/);
});

const VALID_MESSAGES: Array<[string, string]> = [
  ['a Qt signature', 'setVolume(int)'],
  ['a signature with several arguments', 'raise(QString,int,QByteArray)'],
  ['slashes (messages have no segments)', 'a//b/'],
  ['a leading slash', '/x'],
  ['a star (messages are never patterns)', 'get*()'],
  ['exactly 255 bytes', 'm'.repeat(255)],
  ['non-ASCII', 'größe(😀)'],
];

const INVALID_MESSAGES: Array<[string, unknown, RegExp]> = [
  ['empty', '', /empty/],
  ['256 bytes', 'm'.repeat(256), /256 bytes/],
  ['a NUL byte', 'ping\0()', /control/],
  ['a newline', 'ping()\n', /control/],
  ['DEL', '\x7f', /control/],
  ['a C1 control character', '\u009b', /control/],
  ['a lone surrogate', 'x\udfff', /surrogate/],
  ['not a string', null, /string/],
];

for (const [what, name] of VALID_MESSAGES) {
  test(`a message name with ${what} is valid`, () => {
    assert.is(messageProblem(name), null);
  });
}

for (const [what, name, why] of INVALID_MESSAGES) {
  test(`a message name with ${what} is refused`, () => {
    const problem = messageProblem(name as string);
    assert.ok(problem, 'expected a problem');
    assert.match(problem!, why);
  });
}

const PATTERN_CASES: Array<[string, boolean]> = [
  ['QPE/*', true],
  ['*', true],
  ['a*b', true],
  ['a?b', false],
  ['dev/[a-z]', false],
  ['QPE/System', false],
];

for (const [name, expected] of PATTERN_CASES) {
  test(`'${name}' ${expected ? 'is' : 'is not'} a pattern (only a star makes one)`, () => {
    assert.is(isPattern(name), expected);
  });
}

const DECODE: Array<[string, number[], string | null]> = [
  ['ASCII', [...Buffer.from('QPE/System')], 'QPE/System'],
  ['two-byte UTF-8', [0x63, 0x61, 0x66, 0xc3, 0xa9], 'café'],
  ['a four-byte character', [0xf0, 0x9f, 0x98, 0x80], '😀'],
  ['a lone continuation byte', [0x61, 0x80], null],
  ['a truncated sequence', [0x61, 0xc3], null],
  ['an overlong encoding of /', [0xc0, 0xaf], null],
  ['an encoded surrogate (CESU-8)', [0xed, 0xa0, 0x80], null],
  ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], null],
  ['0xFF', [0xff], null],
  ['Latin-1 bytes that are not UTF-8', [0x63, 0x61, 0x66, 0xe9], null],
  ['a byte-order mark in front (kept: it is part of the name)', [0xef, 0xbb, 0xbf, 0x61, 0x62, 0x63], '\ufeffabc'],
  ['a NUL byte (decoded; the name rules refuse it afterwards)', [0x61, 0x00], 'a\0'],
];

for (const [what, bytes, expected] of DECODE) {
  test(`decoding a wire name with ${what} gives ${expected === null ? 'null' : JSON.stringify(expected)}`, () => {
    const buf = Buffer.from([0x99, ...bytes, 0x99]);
    assert.is(decodeName(buf, 1, 1 + bytes.length), expected);
  });
}

test('decoding an empty range gives the empty string', () => {
  assert.is(decodeName(Buffer.from('abc'), 1, 1), '');
});

test('a name decoded from the wire and re-encoded gives back the same bytes', () => {
  for (const name of ['\ufeffabc', 'café', 'x\ufeff', '😀/x']) {
    const bytes = Buffer.from(name, 'utf8');
    const back = decodeName(bytes, 0, bytes.length);
    assert.is(Buffer.from(back ?? '', 'utf8').toString('hex'), bytes.toString('hex'), JSON.stringify(name));
  }
});

test.run();
