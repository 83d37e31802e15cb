// The durable store in-process (runtime/broker/durable/store.ts, records.ts): replay, torn tails, ENOBUFS, compaction.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RecordType, SEGMENT_MAGIC, encodeRecord, scanSegment } from '../../../runtime/broker/durable/records.js';
import { SEGMENT_BYTES, Store, type StoredMsg } from '../../../runtime/broker/durable/store.js';

const dirs: string[] = [];
test.after.each(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-store-'));
  dirs.push(d);
  return d;
}

const opts = { durability: 'batch' as const, syncIntervalMs: 1000, maxStoredBytes: 1 << 30 };
const append = (s: Store, ch: string, i: number, bytes = 8): StoredMsg => s.append(ch, 'm(int)', Buffer.alloc(bytes, i & 0xff), () => {});

test('records round-trip; a scan stops at a torn or corrupt record', () => {
  const a = encodeRecord({ type: RecordType.Msg, seq: 2 ** 40 + 5, deliveries: 2, channel: 'app/é', message: 'x(int)', data: Buffer.from([1, 2, 3]) });
  const b = encodeRecord({ type: RecordType.Unretain, channel: 'cfg/x' });
  const file = Buffer.concat([SEGMENT_MAGIC, a, b]);
  const ok = scanSegment(file);
  assert.is(ok.problem, null);
  assert.equal(ok.records.map((r) => r.rec), [
    { type: RecordType.Msg, seq: 2 ** 40 + 5, deliveries: 2, channel: 'app/é', message: 'x(int)', data: Buffer.from([1, 2, 3]) },
    { type: RecordType.Unretain, channel: 'cfg/x' },
  ]);
  const torn = scanSegment(file.subarray(0, file.length - 2));
  assert.is(torn.records.length, 1);
  assert.is(torn.goodEnd, SEGMENT_MAGIC.length + a.length);
  assert.match(torn.problem!, /torn record/);
  const flipped = Buffer.from(file);
  flipped[SEGMENT_MAGIC.length + 12] ^= 0x40;
  assert.match(scanSegment(flipped).problem!, /checksum mismatch/);
  assert.is(scanSegment(flipped).records.length, 0);
});

test('a store replays what was appended, minus what was done; counts and retained values too', () => {
  const dir = tmp();
  const s = new Store(dir, opts);
  const ms = [0, 1, 2, 3].map((i) => append(s, 'app/a', i));
  s.done(ms[1]!);
  ms[2]!.deliveries = 2;
  s.count(ms[2]!);
  s.retain('app/a', 'v(int)', Buffer.from([7]));
  s.retain('app/b', 'v(int)', Buffer.from([8]));
  s.retain('app/b', 'v(int)', Buffer.alloc(0));
  s.close();
  const r = new Store(dir, opts);
  assert.equal([...r.messages.keys()].sort(), [ms[0]!.seq, ms[2]!.seq, ms[3]!.seq]);
  assert.is(r.messages.get(ms[2]!.seq)!.deliveries, 2);
  assert.equal([...r.retained.keys()], ['app/a']);
  assert.is(r.nextSeq, ms[3]!.seq + 1);
  assert.is(r.problems.length, 0);
  r.close();
});

test('a torn tail is cut off at start and reported; appends go on after it', () => {
  const dir = tmp();
  const s = new Store(dir, opts);
  for (let i = 0; i < 3; i++) append(s, 'app/t', i);
  s.close();
  const file = path.join(dir, fs.readdirSync(dir)[0]!);
  fs.appendFileSync(file, Buffer.from([200, 0, 0, 0, 1, 2]));
  const r = new Store(dir, opts);
  assert.is(r.messages.size, 3);
  assert.is(r.problems.length, 1);
  append(r, 'app/t', 3);
  r.close();
  const again = new Store(dir, opts);
  assert.is(again.messages.size, 4);
  assert.is(again.problems.length, 0);
  again.close();
});

test('maxStoredBytes: ENOBUFS, and the store keeps what it had', () => {
  const dir = tmp();
  const s = new Store(dir, { ...opts, maxStoredBytes: 2000 });
  let n = 0;
  assert.throws(() => {
    for (;;) {
      append(s, 'app/f', n, 300);
      n++;
    }
  }, /ENOBUFS/);
  assert.ok(n >= 4 && n <= 6, `${n}`);
  s.close();
  assert.is(new Store(dir, opts).messages.size, n);
});

test('compaction: consumed segments are deleted; a mostly consumed oldest one is copied forward', () => {
  const dir = tmp();
  const s = new Store(dir, opts);
  const size = 64 * 1024;
  const per = Math.ceil(SEGMENT_BYTES / size);
  const all: StoredMsg[] = [];
  for (let i = 0; i < per * 4; i++) all.push(append(s, 'app/c', i, size));
  assert.ok(s.segmentCount >= 4, `${s.segmentCount} segments`);
  // Keep one message of the first segment, consume everything else but the last few.
  const keep = all[1]!;
  for (const m of all.slice(0, -3)) if (m !== keep) s.done(m);
  assert.ok(s.segmentCount <= 3, `${s.segmentCount} segments after consuming`);
  const files = fs.readdirSync(dir).length;
  assert.is(files, s.segmentCount);
  s.close();
  const r = new Store(dir, opts);
  assert.equal([...r.messages.keys()].sort((a, b) => a - b), [keep.seq, ...all.slice(-3).map((m) => m.seq)]);
  assert.is(r.messages.get(keep.seq)!.data[0], 1);
  r.close();
});

test('scanSegment never throws on random or mutated bytes (it reads disks a crash left behind)', () => {
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const good = Buffer.concat([SEGMENT_MAGIC, ...[0, 1, 2].map((i) => encodeRecord({ type: RecordType.Msg, seq: i, deliveries: 0, channel: 'a/b', message: 'm()', data: Buffer.alloc(i * 3, i) })), encodeRecord({ type: RecordType.Done, seq: 1 })]);
  for (let round = 0; round < 3000; round++) {
    const b = round % 3 === 0 ? Buffer.from(Array.from({ length: rnd(200) }, () => rnd(256))) : Buffer.from(good);
    if (round % 3 !== 0) for (let k = 0, n = 1 + rnd(4); k < n; k++) b[rnd(b.length)] = rnd(256);
    const cut = round % 5 === 0 ? b.subarray(0, rnd(b.length + 1)) : b;
    const scan = scanSegment(cut);
    assert.ok(scan.goodEnd <= cut.length);
    if (round % 3 !== 0 && scan.problem === null) assert.ok(scan.records.length >= 1);
  }
});

test.run();
