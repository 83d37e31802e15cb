// The baselines' wire format: [u32 LE total length][u8 op][u8 channel length][channel][payload], nothing else.

export const OP_SUB = 1; //    client → broker: subscribe to a channel
export const OP_PUB = 2; //    publish on a channel (forwarded unchanged to every subscriber)
export const OP_SUBACK = 3; // broker → client: the subscription is in place
export const HEAD = 6;

/** Builds one frame; the payload is copied in, as any real sender would have to. */
export function frame(op, channel, payload) {
  const chLen = Buffer.byteLength(channel, 'latin1');
  const plen = payload ? payload.length : 0;
  const buf = Buffer.allocUnsafe(HEAD + chLen + plen);
  buf.writeUInt32LE(buf.length, 0);
  buf[4] = op;
  buf[5] = chLen;
  buf.write(channel, HEAD, chLen, 'latin1');
  if (plen) buf.set(payload, HEAD + chLen);
  return buf;
}

export const opOf = (f) => f[4];
export const channelOf = (f) => f.toString('latin1', HEAD, HEAD + f[5]);
export const payloadOf = (f) => f.subarray(HEAD + f[5]);

/**
 * Returns a function that takes stream chunks and calls `onFrame(frame)` for each complete frame
 * (a view into the received bytes). Chunks of a large frame are joined once, when it is complete.
 */
export function frameReader(onFrame) {
  let chunks = [];
  let have = 0;
  let need = -1;
  return (chunk) => {
    chunks.push(chunk);
    have += chunk.length;
    for (;;) {
      if (need < 0) {
        if (have < 4) return;
        if (chunks[0].length < 4) chunks = [Buffer.concat(chunks, have)];
        need = chunks[0].readUInt32LE(0);
        if (need < HEAD) throw new Error(`bad frame length ${need}`);
      }
      if (have < need) return;
      const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, have);
      let at = 0;
      while (buf.length - at >= 4) {
        const len = buf.readUInt32LE(at);
        if (buf.length - at < len) break;
        onFrame(buf.subarray(at, at + len));
        at += len;
      }
      const rest = buf.length - at;
      chunks = rest ? [buf.subarray(at)] : [];
      have = rest;
      need = -1;
      if (rest < 4) return;
    }
  };
}
