// The conformance suite: SPEC §2 semantics written once, run over every transport by a factory.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Client, ClientOptions, ReceivedMessage, WatchEvent } from '../../runtime/index.js';
import { waitFor } from '../helpers/procs.js';

/** What a transport gives the suite: clients of one broker, and a way to restart it. */
export interface Transport {
  /** A new client of the broker under test. */
  connect(options?: ClientOptions): Promise<Client>;
  /** Kills the broker and starts it again on the same address; absent when impossible. */
  restartBroker?(): Promise<void>;
  /** Stops whatever the factory started. */
  cleanup(): Promise<void>;
}

export type TransportFactory = () => Promise<Transport>;

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function once<T>(emitter: { once(ev: string, f: (v: T) => void): unknown }, ev: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${ev}' within ${ms} ms`)), ms);
    emitter.once(ev, (v: T) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.is((err as { code?: string }).code, code, (err as Error).message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** Registers the whole suite under `name` and runs it; every transport runs every test. */
export function conformance(name: string, factory: TransportFactory): void {
  type Ctx = { t: Transport; clients: Client[]; alive?: NodeJS.Timeout };
  const test = suite<Ctx>(name, { t: null as unknown as Transport, clients: [] });
  const client = async (ctx: Ctx, options: ClientOptions = {}) => {
    const c = await ctx.t.connect(options);
    c.on('error', () => {});
    ctx.clients.push(c);
    return c;
  };

  test.before.each(async (ctx) => {
    ctx.t = await factory();
    ctx.clients = [];
    // A test waits on the transport's own timers and sockets; this keeps a hang visible as a
    // failed assertion instead of an event loop that empties and exits early.
    ctx.alive = setInterval(() => {}, 1000);
  });
  test.after.each(async (ctx) => {
    // Bounded, so one transport's hanging close() fails its own test below, not the whole file.
    await Promise.all(ctx.clients.splice(0).map((c) => Promise.race([c.close(), delay(1500)])));
    await ctx.t.cleanup();
    clearInterval(ctx.alive);
  });

  test('close: client.close() resolves promptly and the broker forgets the connection', async (ctx) => {
    const a = await client(ctx);
    const b = await client(ctx);
    await b.listen('close/x', () => {}).ready;
    // A hang guard, not a speed check: close() must resolve on its own.
    const closed = await Promise.race([b.close().then(() => true), delay(5000).then(() => false)]);
    assert.ok(closed, 'close() resolved');
    await waitFor(async () => !(await a.isRegistered('close/x')), 2000, 'the listener of the closed client to go');
  });

  test('delivery: every listening process gets the message once, data intact', async (ctx) => {
    const a = await client(ctx, { name: 'a' });
    const b = await client(ctx, { name: 'b' });
    const got: unknown[] = [];
    await b.listen('conf/one', (m) => got.push([m.message, m.data])).ready;
    await b.listen('conf/*', (m) => got.push(['pattern', m.data])).ready;
    const data = { n: 7, s: 'é', list: [1, 2.5, null, true], bytes: Buffer.from([0, 255]), big: 2n ** 70n };
    assert.is(await a.deliver('conf/one', 'set(int)', data), 1, 'one process receives');
    await b.flush();
    assert.is(got.length, 2);
    assert.equal(got[0], ['set(int)', data]);
    assert.equal(got[1], ['pattern', data]);
  });

  test('large data: 200 KiB arrive intact (through shared memory where the transport allows it)', async (ctx) => {
    const a = await client(ctx);
    const b = await client(ctx);
    const big = Buffer.alloc(200 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const got: Buffer[] = [];
    await b.listen('big/x', (m) => got.push(Buffer.from(m.data as Uint8Array))).ready;
    assert.is(await a.deliver('big/x', 'blob()', big), 1);
    await waitFor(() => got.length === 1, 5000, 'the large message');
    assert.ok(got[0]!.equals(big), 'same bytes');
  });

  test('wildcard: a pattern listener is told the concrete channel; * crosses "/"', async (ctx) => {
    const a = await client(ctx);
    const b = await client(ctx);
    const seen: string[] = [];
    await b.listen('QPE/*', (m) => seen.push(m.channel)).ready;
    await b.listen('s?n/[ab]*', (m) => seen.push(m.channel)).ready;
    for (const ch of ['QPE/Application/x', 'sun/a', 's/n/b', 'sun/c', 'other']) a.send(ch, 'm()');
    await a.flush();
    await b.flush();
    await waitFor(() => seen.length >= 3, 2000, `three messages, got ${JSON.stringify(seen)}`).catch((e) => { throw new Error(`${e.message} ${JSON.stringify(seen)}`); });
    assert.equal(seen, ['QPE/Application/x', 'sun/a', 's/n/b']);
  });

  test('ordering: every listener sees one order; each sender keeps its own', async (ctx) => {
    const s1 = await client(ctx);
    const s2 = await client(ctx);
    const l1 = await client(ctx);
    const l2 = await client(ctx);
    const seen1: string[] = [];
    const seen2: string[] = [];
    await l1.listen('ord/*', (m) => seen1.push(`${m.channel}:${m.data}`)).ready;
    await l2.listen('ord/*', (m) => seen2.push(`${m.channel}:${m.data}`)).ready;
    for (let i = 0; i < 300; i++) {
      s1.send('ord/a', 'm()', i);
      s2.send('ord/b', 'm()', i);
    }
    await Promise.all([s1.flush(), s2.flush()]);
    await waitFor(() => seen1.length === 600 && seen2.length === 600, 5000, '600 messages each');
    assert.equal(seen1, seen2, 'same order for every listener');
    for (const ch of ['ord/a', 'ord/b']) {
      const nums = seen1.filter((x) => x.startsWith(ch + ':')).map((x) => Number(x.split(':')[1]));
      assert.equal(nums, [...Array(300).keys()], `${ch} in the order sent`);
    }
  });

  test('self-delivery: the sender receives its own message when it listens', async (ctx) => {
    const a = await client(ctx);
    const got: unknown[] = [];
    await a.listen('self/x', (m) => got.push(m.data)).ready;
    a.send('self/x', 'm()', 'me');
    const { messages, unrouted } = await a.flush();
    assert.equal({ messages, unrouted }, { messages: 1, unrouted: 0 });
    assert.equal(got, ['me'], 'handed over before flush resolves');
  });

  test('isRegistered: exact and pattern listeners count; a pattern argument is EINVAL', async (ctx) => {
    const a = await client(ctx);
    const b = await client(ctx);
    assert.is(await a.isRegistered('reg/x'), false);
    const l = b.listen('reg/*', () => {});
    await l.ready;
    assert.is(await a.isRegistered('reg/x'), true);
    l.close();
    await b.flush();
    assert.is(await a.isRegistered('reg/x'), false);
    await rejects(a.isRegistered('reg/*'), 'EINVAL');
  });

  test('watch: initial state, then registration changes, also when a process goes away', async (ctx) => {
    const a = await client(ctx);
    const b = await client(ctx);
    await b.listen('w/one', () => {}).ready;
    const events: WatchEvent[] = [];
    await a.watch('w/*', (ev) => events.push(ev)).ready;
    assert.equal(events, [{ type: 'registered', channel: 'w/one', initial: true }]);
    const c = await client(ctx);
    await c.listen('w/two', () => {}).ready;
    await waitFor(() => events.length === 2, 2000, 'registered event');
    assert.equal(events[1], { type: 'registered', channel: 'w/two' });
    await c.close();
    await waitFor(() => events.length === 3, 2000, 'unregistered event');
    assert.equal(events[2], { type: 'unregistered', channel: 'w/two' });
  });

  test('call: first reply wins; a failure carries the replier\'s code', async (ctx) => {
    const a = await client(ctx);
    const b = await client(ctx);
    await b.listen('svc/clock', (m: ReceivedMessage) => {
      if (m.message === 'now()') m.reply!({ t: 42 });
      else m.fail!('EBADTIME', 'no such clock');
    }).ready;
    assert.equal(await a.call('svc/clock', 'now()', undefined, { timeoutMs: 2000 }), { t: 42 });
    await rejects(a.call('svc/clock', 'other()', undefined, { timeoutMs: 2000 }), 'EBADTIME');
  });

  test('ENOLISTENER: a call nobody listens to fails at once, not at the timeout', async (ctx) => {
    const a = await client(ctx);
    const t0 = Date.now();
    await rejects(a.call('nobody/here', 'ping()', undefined, { timeoutMs: 60000 }), 'ENOLISTENER');
    assert.ok(Date.now() - t0 < 30000, 'fails long before the 60 s timeout');
    assert.is(await a.deliver('nobody/here', 'ping()'), 0);
    a.send('nobody/here', 'ping()');
    assert.equal(await a.flush(), { messages: 1, unrouted: 1 });
  });

  test('backpressure: send() returns false past the high-water mark, then drain', async (ctx) => {
    const a = await client(ctx, { highWaterMark: 64 * 1024 });
    const b = await client(ctx);
    let received = 0;
    await b.listen('bp/x', () => received++).ready;
    const chunk = Buffer.alloc(16 * 1024, 1);
    let sent = 0;
    while (a.send('bp/x', 'blob()', chunk)) {
      sent++;
      assert.ok(sent < 1000, 'send() must return false eventually');
    }
    sent++;
    await once(a, 'drain');
    await a.flush();
    await waitFor(() => received === sent, 5000, `${sent} messages received`);
  });

  test('reconnect: listeners come back; sends while disconnected are routed after, once', async (ctx) => {
    if (!ctx.t.restartBroker) throw new Error('every transport must be able to restart its broker');
    const a = await client(ctx, { reconnectMaxDelayMs: 200 });
    const b = await client(ctx, { reconnectMaxDelayMs: 200 });
    const got: unknown[] = [];
    await b.listen('rc/x', (m) => got.push(m.data)).ready;
    const down = once(a, 'disconnected');
    const up = Promise.all([once(a, 'reconnected', 10000), once(b, 'reconnected', 10000)]);
    await ctx.t.restartBroker();
    await down;
    a.send('rc/x', 'm()', 'buffered');
    await up;
    await waitFor(async () => (await a.isRegistered('rc/x')), 5000, 'listener re-registered');
    a.send('rc/x', 'm()', 'after');
    const counts = await a.flush();
    assert.is(counts.messages, 2, 'the buffered send is routed (and counted) after the reconnection');
    await waitFor(() => got.includes('after'), 5000, 'the message sent after the reconnection');
    await b.flush();
    // The buffered send may be routed before b re-registered: then it is counted unrouted, never duplicated.
    assert.equal(got.filter((x) => x === 'after'), ['after']);
    assert.equal(got.filter((x) => x === 'buffered'), counts.unrouted === 0 ? ['buffered'] : []);
  });

  test.run();
}
