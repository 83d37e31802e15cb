// Channel names ↔ MQTT topics, pattern → subscription filter, and the json/cbor payloads (channels/mqtt, docs/MQTT.md).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mqttOptions } from '../../../channels/mqtt/options.js';
import { decodePayload, encodePayload } from '../../../channels/mqtt/payload.js';
import { channelOf, filterOf, filtersOf, topicOf } from '../../../channels/mqtt/topics.js';
import { encodeData } from '../../../runtime/protocol/data.js';

test('topicOf / channelOf: the prefix and the channel name, byte for byte; names MQTT cannot carry are refused', () => {
  assert.is(topicOf('fleet/b1/', 'sensors/t'), 'fleet/b1/sensors/t');
  assert.is(topicOf('', 'QPE/System'), 'QPE/System');
  for (const bad of ['a/+/b', 'a/#', 'x\0y', '$online']) assert.is(topicOf('p/', bad), null, bad);
  assert.is(channelOf('fleet/b1/', 'fleet/b1/cmd/led'), 'cmd/led');
  assert.is(channelOf('fleet/b1/', 'fleet/b2/cmd/led'), null);
  assert.is(channelOf('fleet/b1/', 'fleet/b1/$online'), null);
  assert.is(channelOf('fleet/b1/', 'fleet/b1/'), null);
});

test('filterOf: a trailing * is #, other wildcards subscribe from the last / before them, plain names exactly', () => {
  const cases: Array<[string, string]> = [
    ['cmd/*', 'p/cmd/#'],
    ['cmd/le*', 'p/cmd/#'],
    ['cmd*', 'p/#'],
    ['*', 'p/#'],
    ['a/b/*/c', 'p/a/b/#'],
    ['cmd', 'p/cmd'],
    ['a/b?', 'p/a/b?'], // no * : a plain name, ? included
    ['a+b/*', 'p/#'], // an MQTT wildcard character in the literal part
  ];
  for (const [pattern, filter] of cases) assert.is(filterOf('p/', pattern), filter, pattern);
  assert.equal(filtersOf('p/', ['cmd/*', 'cmd/led', 'cmd/le*', 'x']), ['p/cmd/#', 'p/x']);
});

test('json payloads: data as JSON text out; JSON, text or bytes in; the message name from the user property or `mqtt`', () => {
  assert.is(encodePayload('json', 'temp(double)', 21.5, encodeData(21.5)).toString(), '21.5');
  assert.is(encodePayload('json', 'm()', { b: Buffer.from([1, 2]), n: 2n ** 70n }, Buffer.alloc(0)).toString(), '{"b":{"$bytes":"AQI="},"n":{"$bigint":"1180591620717411303424"}}');
  assert.equal(decodePayload('json', Buffer.from('{"on":true}'), undefined), { message: 'mqtt', data: { on: true } });
  assert.equal(decodePayload('json', Buffer.from('hello'), 'say(QString)'), { message: 'say(QString)', data: 'hello' });
  assert.equal(decodePayload('json', Buffer.from([0xff, 0xfe]), undefined), { message: 'mqtt', data: Buffer.from([0xff, 0xfe]) });
  assert.throws(() => decodePayload('json', Buffer.from('1'), 'bad\u0001name'), /control character/);
  assert.throws(() => decodePayload('json', Buffer.from('{"$bytes":"!!"}'), undefined), /base64/);
  const deep = '['.repeat(200000) + ']'.repeat(200000);
  assert.throws(() => decodePayload('json', Buffer.from(deep), undefined));
});

test('cbor payloads: [message, data] with the sender\'s bytes; anything else refused', () => {
  const data = { t: 21.5, raw: Buffer.from([0, 1]) };
  const p = encodePayload('cbor', 'temp(map)', undefined, encodeData(data));
  assert.equal(decodePayload('cbor', p, undefined), { message: 'temp(map)', data });
  for (const bad of [Buffer.from('not cbor'), encodeData([1, 2]), encodeData(['m()']), encodeData(['m()', 1, 2]), Buffer.alloc(0), encodeData(['', 1])]) {
    assert.throws(() => decodePayload('cbor', bad, undefined), undefined, bad.toString('hex'));
  }
});

test('options: defaults, and every bad value refused with EINVAL naming the key', () => {
  const o = mqttOptions({ url: 'mqtt://gw', prefix: 'fleet/b1/', export: ['s/*'] });
  assert.equal([o.format, o.qos, o.protocol, o.maxBufferedBytes, o.presence, o.clean, o.groups], ['json', 0, 'auto', 1048576, true, true, []]);
  assert.match(o.clientId, /^qcop-.+-fleet_b1$/);
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ url: 'ftp://x' }, /url must be/],
    [{ url: 'mqtt://x', prefix: 'no-slash' }, /must end with \//],
    [{ url: 'mqtt://x', prefix: '$SYS/' }, /must not start with \$/],
    [{ url: 'mqtt://x', prefix: 'a/', groups: ['a/b/'] }, /must not contain one another/],
    [{ url: 'mqtt://x', groups: ['all/'] }, /must not contain one another/], // the empty prefix contains everything
    [{ url: 'mqtt://x', format: 'xml' }, /format must be/],
    [{ url: 'mqtt://x', qos: 2 }, /qos must be 0 or 1/],
    [{ url: 'mqtt://x', export: [''] }, /export must be a list/],
    [{ url: 'mqtt://x', maxBufferedBytes: -1 }, /maxBufferedBytes must be/],
    [{ url: 'mqtt://x', reconnectMinMs: 5000, reconnectMaxMs: 100 }, /reconnectMaxMs/],
    [{ url: 'mqtt://x', colour: 'red' }, /unknown option 'colour'/],
    [{ url: 'mqtt://x', presence: false }, /nothing to bridge/],
  ];
  for (const [opts, why] of bad) {
    try {
      mqttOptions(opts);
      assert.unreachable(JSON.stringify(opts));
    } catch (err) {
      assert.is((err as { code?: string }).code, 'EINVAL', JSON.stringify(opts));
      assert.match((err as Error).message, why);
    }
  }
});

test.run();
