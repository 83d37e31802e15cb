// The client's name checks and their cached bytes (runtime/client/send-names.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SendNames } from '../../../runtime/client/send-names.js';

test('a checked name keeps its UTF-8 bytes: the same Buffer while cached, the cache bounded', () => {
  const n = new SendNames();
  n.check('ünï/x', 'm(QString)');
  const a = n.channelBytes('ünï/x');
  assert.equal(a, Buffer.from('ünï/x', 'utf8'));
  assert.equal(n.messageBytes('m(QString)'), Buffer.from('m(QString)', 'utf8'));
  n.check('ünï/x', 'm(QString)');
  assert.is(n.channelBytes('ünï/x'), a, 'cached');
  for (let i = 0; i < 5000; i++) n.checkChannel(`n/${i}`, true);
  assert.is.not(n.channelBytes('ünï/x'), a, 'the cache was emptied when it filled');
  assert.equal(n.channelBytes('ünï/x'), a, 'the bytes are still right');
});

test('EINVAL for a bad channel or message, and for a pattern where a concrete channel is needed, also once cached', () => {
  const n = new SendNames();
  assert.throws(() => n.check('', 'm()'), /^EINVAL: /);
  assert.throws(() => n.check('a/b', ''), /^EINVAL: /);
  assert.throws(() => n.check('a/*', 'm()'), /^EINVAL: /);
  n.checkChannel('a/*', false);
  assert.throws(() => n.check('a/*', 'm()'), /^EINVAL: /, 'a cached pattern is still no concrete channel');
  n.check('a/b', 'm()');
});

test.run();
