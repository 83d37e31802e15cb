// Owns: the multi-process checks run against one built target folder under QEMU: broker start and ready time, CLI send/listen/registered/watch/call, shared-memory lock contention and crash recovery, a large message.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { expect, run, start, until, waitForSocket } from './harness.mjs';

const T = Number(process.env.QCOP_QEMU_TIMEOUT_MS || 90000);

/**
 * Runs every scenario for one arch. `ctx`: { arch, node (argv prefix running the emulated Node),
 * folder (copied target), peer (bundle path), lib (host-side library module), tmp, tally, socat }.
 * Returns { readyMs }.
 */
export async function runScenarios(ctx) {
  const { arch, node, folder, peer, lib, tmp, tally } = ctx;
  const sock = join(tmp, 'q.sock');
  const env = { QCOP_SOCKET: sock };
  const qcop = (...args) => run(node[0], [...node.slice(1), join(folder, 'qcop.js'), ...args], { timeoutMs: T, env });
  const qcopStart = (...args) => start(node[0], [...node.slice(1), join(folder, 'qcop.js'), ...args], { timeoutMs: T, env });
  const peerStart = (...args) => start(node[0], [...node.slice(1), peer, ...args], { timeoutMs: T, env });
  const name = (s) => `${arch} ${s}`;
  let readyMs = null;
  let broker;
  let host; // a host-side client (x64, same sources) used only to wait for registrations quickly

  const registered = async (channel, want, ms = T) => {
    const until = Date.now() + ms;
    while ((await host.isRegistered(channel)) !== want) {
      if (Date.now() > until) throw new Error(`${channel} did not become ${want ? 'registered' : 'unregistered'} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  await tally.check(name('qcop.js refuses the host architecture with one line'), async () => {
    const r = await run(process.execPath, [join(folder, 'qcop.js'), '--help'], { timeoutMs: 20000 });
    const lines = r.stderr.trim().split('\n');
    expect(r.code === 1, `exit ${r.code}, want 1`);
    expect(lines.length === 1 && /is for linux-/.test(lines[0]), `stderr: ${r.stderr}`);
  });

  await tally.check(name('qcop.js --help under emulation'), async () => {
    const r = await qcop('--help');
    expect(r.code === 0 && /usage: qcop/.test(r.stdout), `exit ${r.code}: ${r.stderr}`);
    return `${r.ms} ms`;
  });

  // systemd's side of Type=notify: a datagram socket (Node has none, socat does) in NOTIFY_SOCKET.
  const notifyPath = join(tmp, 'notify.sock');
  let notify;
  const brokerUp = await tally.check(name('qcopd.js starts from the copied folder; socket accepts; READY=1 after it'), async () => {
    expect(ctx.socat, 'socat is missing (apt-get install socat): cannot receive sd_notify datagrams');
    notify = start('socat', ['-u', `UNIX-RECV:${notifyPath},unlink-early`, 'STDOUT'], { timeoutMs: 15 * 60000 });
    await until(() => existsSync(notifyPath) || notify.done, 10000, 'socat to bind the notify socket');
    broker = start(node[0], [...node.slice(1), join(folder, 'qcopd.js'), '--socket', sock], { timeoutMs: 15 * 60000, env: { NOTIFY_SOCKET: notifyPath } });
    let acceptedAt = null;
    const accepted = waitForSocket(sock, T, () => !broker.done).then(() => { acceptedAt = Date.now(); });
    await until(() => /READY=1/.test(notify.stdout) || broker.done, T, 'READY=1 from the broker');
    const readyAt = Date.now();
    await accepted;
    expect(/READY=1/.test(notify.stdout), `no READY=1; broker stderr: ${broker.stderr.slice(-300)}`);
    expect(acceptedAt <= readyAt + 50, 'READY=1 came before the socket accepted connections');
    readyMs = acceptedAt - broker.startedAt;
    host = await lib.connect({ socket: sock, name: 'qemu-host' });
    return `socket accepts after ${readyMs} ms, READY=1 after ${readyAt - broker.startedAt} ms`;
  });
  if (!brokerUp) return { readyMs };

  try {
    await tally.check(name('listen demo/* --count 1 + send demo/x hello(int) 42'), async () => {
      const listener = qcopStart('listen', 'demo/*', '--count', '1', '--timeout', String(T / 1000));
      await registered('demo/x', true);
      const s = await qcop('send', 'demo/x', 'hello(int)', '42');
      expect(s.code === 0 && JSON.parse(s.stdout).receivers === 1, `send: exit ${s.code} ${s.stdout} ${s.stderr}`);
      const r = await listener.exited;
      expect(r.code === 0, `listen exit ${r.code}: ${listener.stderr}`);
      const got = JSON.parse(listener.lines[0]);
      expect(JSON.stringify(got) === JSON.stringify({ channel: 'demo/x', message: 'hello(int)', data: 42 }), `listener printed ${listener.lines[0]}`);
    });

    await tally.check(name('registered: true while a listener lives, false after'), async () => {
      const listener = qcopStart('listen', 'reg/a', '--timeout', String(T / 1000));
      await registered('reg/a', true);
      const yes = await qcop('registered', 'reg/a');
      expect(yes.code === 0 && yes.stdout.trim() === 'true', `registered: exit ${yes.code} ${yes.stdout}`);
      listener.kill('SIGTERM');
      await listener.exited;
      await registered('reg/a', false);
      const no = await qcop('registered', 'reg/a');
      expect(no.code === 1 && no.stdout.trim() === 'false', `after: exit ${no.code} ${no.stdout}`);
    });

    await tally.check(name('watch svc/* sees a replier come and go; call gets its reply'), async () => {
      const watch = qcopStart('watch', 'svc/*');
      const replier = peerStart('replier', sock, 'svc/clock');
      await replier.waitLine((v) => v?.ready, T);
      await watch.waitLine((v) => v?.type === 'registered' && v.channel === 'svc/clock', T);
      const c = await qcop('call', 'svc/clock', 'now()', '{"n":7}', '--timeout', '30');
      expect(c.code === 0, `call exit ${c.code}: ${c.stderr}`);
      const reply = JSON.parse(c.stdout);
      expect(reply.echo?.n === 7 && reply.message === 'now()' && reply.arch === (arch === 'arm64' ? 'arm64' : 'arm'), `reply ${c.stdout}`);
      replier.end();
      await replier.exited;
      await watch.waitLine((v) => v?.type === 'unregistered' && v.channel === 'svc/clock', T);
      watch.kill('SIGTERM');
      const w = await watch.exited;
      expect(w.code === 0, `watch exit ${w.code} on SIGTERM`);
    });

    await tally.check(name('call with nobody listening fails at once with ENOLISTENER'), async () => {
      const c = await qcop('call', 'svc/none', 'now()', '--timeout', '30');
      expect(c.code === 1 && /ENOLISTENER/.test(c.stderr), `exit ${c.code}: ${c.stderr}`);
      expect(c.ms < 25000, `took ${c.ms} ms: it waited for the timeout`);
    });

    await tally.check(name('shared memory: 3 processes x 100 locked increments = exactly 300'), async () => {
      const key = `qemu/${arch}/${process.pid}/counter`;
      const owner = peerStart('shm-owner', key, '4096');
      await owner.waitLine((v) => v?.ready, T);
      const workers = [0, 1, 2].map(() => peerStart('shm-worker', key, '100'));
      const results = await Promise.all(workers.map((w) => w.waitLine((v) => v?.done, T * 2)));
      owner.write('read\n');
      const { count } = await owner.waitLine((v) => typeof v?.count === 'number', T);
      owner.end();
      await owner.exited;
      expect(count === 300, `count ${count}, want 300`);
      expect(results.every((r) => r.recovered === 0), `unexpected recoveries ${JSON.stringify(results)}`);
    });

    await tally.check(name('shared memory: lock held by a SIGKILLed process is recovered'), async () => {
      const key = `qemu/${arch}/${process.pid}/crash`;
      const owner = peerStart('shm-owner', key, '4096');
      await owner.waitLine((v) => v?.ready, T);
      const holder = peerStart('shm-holder', key);
      await holder.waitLine((v) => v?.locked, T);
      holder.kill('SIGKILL');
      await holder.exited;
      const next = await run(node[0], [...node.slice(1), peer, 'shm-lock-once', key], { timeoutMs: T });
      owner.end();
      await owner.exited;
      expect(next.code === 0, `shm-lock-once exit ${next.code}: ${next.stderr}`);
      expect(JSON.parse(next.stdout).recovered === true, `got ${next.stdout}`);
    });

    await tally.check(name('large message (1 MiB, over the frame limit: shared-memory pool) reaches a listener intact'), async () => {
      const listener = peerStart('big-listen', sock, 'big/frame');
      await listener.waitLine((v) => v?.ready, T);
      const sender = await run(node[0], [...node.slice(1), peer, 'big-send', sock, 'big/frame', String(1 << 20)], { timeoutMs: T });
      expect(sender.code === 0, `sender exit ${sender.code}: ${sender.stderr}`);
      const sent = JSON.parse(sender.stdout.split('\n')[0]);
      const got = await listener.waitLine((v) => typeof v?.len === 'number', T);
      expect(sent.flushed?.messages === 1 && sent.flushed?.unrouted === 0, `flush ${JSON.stringify(sent.flushed)}`);
      expect(got.len === 1 << 20 && got.sha256 === sent.sha256, `got ${JSON.stringify(got)}, sent ${sent.sha256}`);
      const shm = sent.stats?.shm;
      expect(shm && shm.messages >= 1, `the broker did not route it through shared memory: stats.shm ${JSON.stringify(shm)}`);
      return `pool: ${shm.messages} message(s), ${shm.bytes} bytes, ${shm.inlined} inlined`;
    });

    await tally.check(name('stats prints broker figures as JSON'), async () => {
      const s = await qcop('stats');
      const v = JSON.parse(s.stdout);
      expect(s.code === 0 && typeof v.clients === 'number' && typeof v.routed === 'number', `exit ${s.code}: ${s.stdout}`);
    });
  } finally {
    await host?.close().catch(() => {});
  }

  await tally.check(name('qcopd exits 0 on SIGTERM after STOPPING=1'), async () => {
    broker.kill('SIGTERM');
    const r = await broker.exited;
    expect(r.code === 0, `exit ${r.code} signal ${r.signal}: ${broker.stderr.slice(-300)}`);
    await until(() => /STOPPING=1/.test(notify.stdout), 5000, 'STOPPING=1').catch(() => {});
    expect(/STOPPING=1/.test(notify.stdout), `notify socket got ${JSON.stringify(notify.stdout)}`);
    notify.kill('SIGTERM');
  });
  return { readyMs };
}
