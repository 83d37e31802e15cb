// `qcop record` and `qcop replay` (SPEC §12): capture channels into a recording file (docs/RECORD.md) and play it back with its timing.
import * as os from 'node:os';
import type { Client } from '../client/client.js';
import type { ReceivedMessage } from '../client/message.js';
import { headSize } from '../protocol/cbor.js';
import { decodeData, encodeData } from '../protocol/data.js';
import { QcopError } from '../protocol/errors.js';
import { channelProblem, isPattern } from '../protocol/names.js';
import { connectFromFlags } from './connect-flags.js';
import { channelArg } from './messaging.js';
import { RECORD_VERSION, RecordReader, RecordWriter, type RecordItem } from './record-file.js';
import { CLIENT_FLAGS, UsageError, listFlag, numberFlag, stringFlag, untilSignal, type Command, type ParsedArgs } from './table.js';

const seconds = (ns: bigint): string => (Number(ns / 1000n) / 1e6).toFixed(2);

export const record: Command = {
  name: 'record',
  summary: 'Record the messages on the channels or patterns into FILE with their timing (docs/RECORD.md).',
  usage: 'qcop record PATTERN... --out FILE [--duration S] [--count N]',
  flags: {
    ...CLIENT_FLAGS,
    out: { type: 'string', description: 'the recording to write (replaced when it exists)' },
    duration: { type: 'string', description: 'stop after S seconds' },
    count: { type: 'string', description: 'stop after N messages' },
  },
  positionals: { min: 1, max: Infinity },
  async run(args) {
    const patterns = args.positionals.map((p) => channelArg(p, false));
    const out = stringFlag(args, 'out');
    if (!out) throw new UsageError(`--out FILE is needed: usage: ${record.usage}`);
    const count = numberFlag(args, 'count', { integer: true, min: 1 });
    const duration = numberFlag(args, 'duration', { min: 0 });
    const signal = untilSignal();
    let client: Client | undefined;
    let writer: RecordWriter | undefined;
    let timer: NodeJS.Timeout | undefined;
    let t0 = process.hrtime.bigint();
    let stoppedAt: bigint | undefined;
    let failure: unknown;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const stop = (err?: unknown) => {
      if (stoppedAt !== undefined) return;
      stoppedAt = process.hrtime.bigint();
      if (err !== undefined) failure = err;
      finish();
    };
    try {
      client = await connectFromFlags(args, true);
      const c = client;
      // The zero of the offsets and the header's start: taken together, just before listening.
      t0 = process.hrtime.bigint();
      writer = new RecordWriter(out, {
        'qcop-record': RECORD_VERSION,
        broker: String(c.limits.broker ?? ''),
        host: os.hostname(),
        start: new Date().toISOString(),
        patterns,
      });
      const w = writer;
      w.onError = stop;
      let last: ReceivedMessage | null = null;
      const onMessage = (msg: ReceivedMessage) => {
        if (msg === last || stoppedAt !== undefined) return; // once per message, even when several patterns match
        last = msg;
        msg.decline?.(); // a call must not wait for a recorder
        const at = Number((process.hrtime.bigint() - t0) / 1000n);
        let bytes = msg.bytes;
        if (msg.shared) {
          // A lent view of the sender's pool: a private copy, checked after it was made (EBADSLOT,
          // counted as lost by the library, when the sender shrank its segment meanwhile: docs/SHM.md §10).
          bytes = Buffer.from(bytes);
          void msg.bytes;
        }
        try {
          w.item(at, msg.channel, msg.message, bytes);
        } catch (err) {
          stop(err);
          return;
        }
        if (count !== undefined && w.items >= count) stop();
      };
      c.on('lost', (info: { count: number }) => process.stderr.write(`qcop record: ${info.count} message(s) lost: the broker dropped them while this recorder was not reading\n`));
      c.on('disconnected', () => process.stderr.write('qcop record: connection to the broker lost; reconnecting (messages sent meanwhile are not recorded)\n'));
      c.on('reconnected', () => process.stderr.write('qcop record: reconnected\n'));
      // Until every listener is registered, a refusal rejects its `ready` below (and is reported once, from there).
      let listening = false;
      c.on('error', (err: Error) => listening && process.stderr.write(`${err.message}\n`));
      c.on('close', () => stop(new QcopError('ECLOSED', 'the connection to the broker closed')));
      const handles = patterns.map((p) => c.listen(p, onMessage));
      await Promise.all(handles.map((h) => h.ready));
      listening = true;
      if (duration !== undefined) timer = setTimeout(() => stop(), duration * 1000);
      await Promise.race([done, signal.promise.then(() => stop())]);
    } catch (err) {
      stop(err);
    } finally {
      clearTimeout(timer);
      signal.dispose();
      stop();
      try {
        writer?.close();
      } catch (err) {
        failure ??= err;
      }
      if (writer) process.stderr.write(`recorded ${writer.items} messages (${writer.written} bytes) in ${seconds(stoppedAt! - t0)} s\n`);
      await client?.close();
    }
    if (failure !== undefined) throw failure;
    return 0;
  },
};

/** `--map FROM=TO`: channels starting with FROM start with TO instead. */
interface ChannelMap {
  from: string;
  to: string;
}

function parseMaps(args: ParsedArgs): ChannelMap[] {
  return listFlag(args, 'map').map((text) => {
    const eq = text.indexOf('=');
    if (eq < 0) throw new UsageError(`--map needs FROM=TO (a channel prefix and its replacement), got '${text}'`);
    return { from: text.slice(0, eq), to: text.slice(eq + 1) };
  });
}

function mapChannel(maps: ChannelMap[], channel: string): string {
  for (const m of maps) if (channel.startsWith(m.from)) return m.to + channel.slice(m.from.length);
  return channel;
}

function speedFlag(args: ParsedArgs): number {
  const raw = stringFlag(args, 'speed');
  if (raw === undefined) return 1;
  if (raw === 'max') return Infinity;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--speed needs a number above 0 or 'max', got '${raw}'`);
  return n;
}

/** The channel an item is sent on: mapped, and valid as a concrete channel (EINVAL naming the map otherwise). */
function target(maps: ChannelMap[], item: RecordItem, file: string): string {
  const channel = mapChannel(maps, item.channel);
  if (channel === item.channel) return channel;
  const problem = channelProblem(channel) ?? (isPattern(channel) ? `'${channel}' is a pattern` : null);
  if (problem) throw new UsageError(`--map turns '${item.channel}' (${file}, item ${item.index}) into '${channel}': ${problem}`);
  return channel;
}

/** Reads the whole file without the data: a file that is not a recording, cut short, or mapped to bad channels sends nothing. */
function check(file: string, maps: ChannelMap[]): number {
  const reader = RecordReader.open(file);
  try {
    let n = 0;
    for (let item; (item = reader.next(false)); n++) target(maps, item, file);
    return n;
  } finally {
    reader.close();
  }
}

/** True when re-encoding `value` gives back `bytes` (always for data a qcop client encoded). */
function sameBytes(bytes: Buffer, value: unknown): boolean {
  if (bytes.length === 0) return true;
  // A whole byte string: identical when its head was in shortest form.
  if (Buffer.isBuffer(value) && headSize(value.length) + value.length === bytes.length) return true;
  return encodeData(value).equals(bytes);
}

/** Resolves on 'drain', or when the connection closed (the next send then says so). */
function drained(client: Client, interrupted: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      client.off('drain', done);
      client.off('close', done);
      resolve();
    };
    client.on('drain', done);
    client.on('close', done);
    void interrupted.then(done);
  });
}

function sleep(ms: number, interrupted: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    void interrupted.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

export const replay: Command = {
  name: 'replay',
  summary: 'Send the messages of a recording (qcop record) again, with their original spacing or faster.',
  usage: 'qcop replay FILE [--speed X|max] [--map FROM=TO]...',
  flags: {
    ...CLIENT_FLAGS,
    speed: { type: 'string', description: "X times the recorded pace (default 1), or 'max': as fast as the broker takes them" },
    map: { type: 'string', multiple: true, description: 'send channels starting with FROM on TO + the rest instead (repeatable; the first match wins)' },
  },
  positionals: { min: 1, max: 1 },
  async run(args) {
    const file = args.positionals[0]!;
    const speed = speedFlag(args);
    const maps = parseMaps(args);
    const total = check(file, maps);
    const reader = RecordReader.open(file);
    const signal = untilSignal();
    let stopped = false;
    const interrupted = signal.promise.then(() => {
      stopped = true;
    });
    let client: Client | undefined;
    let failure: unknown;
    let sent = 0;
    let reencoded = 0;
    let began = process.hrtime.bigint();
    try {
      client = await connectFromFlags(args);
      const c = client;
      // A send the broker refused (denied, too large...) arrives later as an event: the first one ends the replay.
      c.on('error', (err: Error) => {
        failure ??= err;
        stopped = true;
      });
      let first: number | undefined;
      const start = performance.now();
      began = process.hrtime.bigint();
      for (let item; !stopped && (item = reader.next(true)); ) {
        const channel = target(maps, item, file);
        first ??= item.offsetMicros;
        if (speed !== Infinity) {
          const wait = start + (item.offsetMicros - first) / 1000 / speed - performance.now();
          if (wait >= 1) await sleep(wait, interrupted);
          if (stopped) break;
        }
        const bytes = item.data!;
        let value: unknown;
        try {
          value = decodeData(bytes, true);
        } catch (err) {
          throw new QcopError('EINVAL', `${file} is not a qcop recording: item ${item.index} at byte ${item.at}: its data are not one CBOR item (${(err as Error).message.replace(/^EPROTO: /, '')})`);
        }
        // No public send takes encoded bytes: the library encodes the decoded value again, which
        // gives the same bytes for everything a qcop client sent (counted when it does not).
        if (!sameBytes(bytes, value)) reencoded++;
        const more = c.send(channel, item.message, value);
        sent++;
        if (!more) await drained(c, interrupted);
      }
      if (stopped && failure === undefined) process.stderr.write(`qcop replay: interrupted after ${sent} of ${total} messages\n`);
      await c.flush();
    } catch (err) {
      failure ??= err;
    } finally {
      signal.dispose();
      reader.close();
      await client?.close();
    }
    if (reencoded > 0) {
      process.stderr.write(`qcop replay: the data of ${reencoded} message(s) were not in the CBOR form the library writes (another client's encoder): sent with equal values, in other bytes\n`);
    }
    if (failure !== undefined) throw failure;
    process.stderr.write(`replayed ${sent} messages in ${seconds(process.hrtime.bigint() - began)} s\n`);
    return 0;
  },
};
