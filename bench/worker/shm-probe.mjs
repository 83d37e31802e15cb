// Asks the runtime whether large data really travel through shared memory: a 256 KiB message to itself.
// argv[2] = broker socket; prints one JSON line { active, why }.
const socket = process.argv[2];
let client = null;
const out = async (v) => {
  process.stdout.write(JSON.stringify(v) + '\n');
  // Closing lets the runtime release the pool it created for the probe.
  await Promise.race([client?.close(), new Promise((r) => setTimeout(r, 500))]).catch(() => {});
  process.exit(0);
};
setTimeout(() => out({ active: false, why: 'probe timed out' }), 5000).unref();
try {
  const { connect } = await import('../../dist/runtime/index.js');
  client = await connect({ socket, name: 'shm-probe', shm: true, reconnect: false });
  if (!client.poolInUse) await out({ active: false, why: 'the runtime has no shared-memory message path (no client.poolInUse)' });
  const data = Buffer.alloc(256 << 10, 7);
  let pooled = false;
  const got = new Promise((resolve) =>
    client.listen('bench/probe', (m) => resolve(m.data)).ready.then(() => {
      client.send('bench/probe', 'probe', data);
      pooled = client.poolInUse.bytes > 0; // the slot is held until the receiver has read it
    }),
  );
  const back = await got;
  const ok = back && back.length === data.length && Buffer.compare(Buffer.from(back), data) === 0;
  if (!pooled) await out({ active: false, why: `256 KiB of data did not use the shared-memory pool (features: ${JSON.stringify(client.limits?.features ?? [])})` });
  await out(ok ? { active: true, why: '' } : { active: false, why: 'a 256 KiB message through shared memory came back wrong' });
} catch (err) {
  await out({ active: false, why: `probe failed: ${err.code ?? ''} ${err.message}`.trim() });
}
