// The recording file of `qcop record` / `qcop replay` (docs/RECORD.md): a CBOR sequence written streaming, read back as a possibly hostile file.
import * as fs from 'node:fs';
import { HeadReader, INDEFINITE, MAX_DEPTH, Major, headArg, headBytes, headSize, putHead } from '../protocol/cbor.js';
import { decodeControl, encodeControl } from '../protocol/control.js';
import { QcopError } from '../protocol/errors.js';
import { channelProblem, isPattern, messageProblem } from '../protocol/names.js';

/** The version this qcop writes and reads (the value of the header's `qcop-record` key). */
export const RECORD_VERSION = 1;

/** The first item of a recording. */
export interface RecordHeader {
  'qcop-record': number;
  /** The broker's name, from its welcome. */
  broker: string;
  /** The host the recording was made on. */
  host: string;
  /** Wall-clock time at offset 0 (ISO 8601). */
  start: string;
  /** The channels and patterns recorded. */
  patterns: string[];
}

/** One recorded message, as the reader finds it. */
export interface RecordItem {
  /** Microseconds since the recording started (monotonic clock). */
  offsetMicros: number;
  channel: string;
  message: string;
  /** 1-based position of the item in the file (the header is not counted). */
  index: number;
  /** Byte offset of the item in the file. */
  at: number;
  /** The raw CBOR data bytes (empty: no data); only when asked for. A view valid until the next `next()`. */
  data?: Buffer;
  dataLength: number;
}

const BUFFER = 64 * 1024;
/** Largest item head before its data bytes: array head, offset, two names of at most 255 bytes, the data head. */
const PREFIX_MAX = 1 + 9 + 9 + 255 + 9 + 255 + 9;
const CHUNK = 256 * 1024;
/** A header larger than this is refused (it is a few hundred bytes in practice). */
const HEADER_MAX = CHUNK;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Writes a recording as it goes: small items are gathered in a 64 KiB buffer written out on the
 * next turn of the event loop (a burst costs one write; a crash loses at most that turn's items),
 * large data are written straight from the caller's buffer. Writes are synchronous: the caller's
 * bytes are on their way to the file when `item()` returns, so a view may be reused right after.
 */
export class RecordWriter {
  /** Bytes written to the file so far. */
  written = 0;
  /** Items written (or buffered) so far. */
  items = 0;
  /** Called with the error of a write made on a later turn (a full disk). */
  onError: (err: QcopError) => void = () => {};
  private readonly fd: number;
  private readonly buf = Buffer.allocUnsafe(BUFFER);
  private used = 0;
  private pending: NodeJS.Immediate | null = null;
  private closed = false;

  constructor(readonly file: string, header: RecordHeader) {
    try {
      this.fd = fs.openSync(file, 'w', 0o644);
    } catch (err) {
      throw QcopError.fromSystem(err, `cannot create ${file}`);
    }
    this.writeAll(encodeControl(header));
  }

  /** Appends one message: offset in microseconds, channel, message, the raw CBOR data bytes. */
  item(offsetMicros: number, channel: string, message: string, data: Uint8Array): void {
    if (this.closed) throw new QcopError('ECLOSED', `${this.file} is closed`);
    const ch = Buffer.from(channel, 'utf8');
    const msg = Buffer.from(message, 'utf8');
    const prefix = 1 + headSize(offsetMicros) + headSize(ch.length) + ch.length + headSize(msg.length) + msg.length + headSize(data.length);
    if (this.used + prefix > BUFFER) this.flush();
    const b = this.buf;
    let at = this.used;
    b[at++] = (Major.Array << 5) | 4;
    at = putHead(b, at, Major.Uint, offsetMicros);
    at = putHead(b, at, Major.Text, ch.length);
    at += ch.copy(b, at);
    at = putHead(b, at, Major.Text, msg.length);
    at += msg.copy(b, at);
    at = putHead(b, at, Major.Bytes, data.length);
    this.used = at;
    this.items++;
    if (data.length > BUFFER - this.used) {
      this.flush();
      if (data.length > BUFFER / 4) {
        this.writeAll(data);
        return;
      }
    }
    b.set(data, this.used);
    this.used += data.length;
    this.pending ??= setImmediate(() => {
      this.pending = null;
      try {
        this.flush();
      } catch (err) {
        this.onError(err as QcopError);
      }
    });
  }

  /** Writes what is buffered. */
  flush(): void {
    if (this.used === 0) return;
    const n = this.used;
    this.used = 0;
    this.writeAll(this.buf.subarray(0, n));
  }

  /** Writes what is buffered, syncs and closes the file. */
  close(): void {
    if (this.closed) return;
    if (this.pending) clearImmediate(this.pending);
    this.pending = null;
    try {
      this.flush();
      fs.fsyncSync(this.fd);
    } catch (err) {
      throw err instanceof QcopError ? err : QcopError.fromSystem(err, `cannot write ${this.file}`);
    } finally {
      this.closed = true;
      fs.closeSync(this.fd);
    }
  }

  private writeAll(b: Uint8Array): void {
    try {
      for (let off = 0; off < b.length; ) off += fs.writeSync(this.fd, b, off, b.length - off);
    } catch (err) {
      throw QcopError.fromSystem(err, `cannot write ${this.file}`);
    }
    this.written += b.length;
  }
}

/**
 * Reads a recording item by item, trusting nothing in it: every length is checked against the
 * file's size before anything is allocated or read for it, names are checked as the broker
 * would, offsets may not go back. Anything else is EINVAL naming the file and the byte offset.
 */
export class RecordReader {
  readonly header: RecordHeader;
  readonly size: number;
  /** File offset of the next item. */
  pos = 0;
  private index = 0;
  private lastOffset = 0;
  private readonly chunk = Buffer.allocUnsafe(CHUNK);
  private chunkAt = 0;
  private chunkLen = 0;

  private constructor(readonly file: string, private readonly fd: number) {
    try {
      this.size = fs.fstatSync(fd).size;
      this.header = this.readHeader();
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Opens `file` and reads its header: ENOENT/EACCES when it cannot be read, EINVAL when it is not a recording. */
  static open(file: string): RecordReader {
    let fd;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw QcopError.fromSystem(err, `cannot read ${file}`);
    }
    return new RecordReader(file, fd);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /** The next item, with its data bytes when `withData`; null at the end of the file. */
  next(withData: boolean): RecordItem | null {
    const at = this.pos;
    if (at >= this.size) return null;
    const index = ++this.index;
    const where = `item ${index} at byte ${at}`;
    const cut = () => this.bad(`${where} is cut short by the end of the file (${this.size} bytes); its first ${at} bytes hold ${index - 1} whole item(s)`, null);
    // Every head below lies within PREFIX_MAX bytes: bytes missing from the window are bytes missing from the file.
    let i = this.window(at, PREFIX_MAX);
    const end = i + Math.min(PREFIX_MAX, this.size - at);
    const b = this.chunk;
    const head = (what: string, major: number): number => {
      if (i >= end) throw cut();
      const size = headBytes(b[i]!);
      if (b[i]! >> 5 !== major || size === 0) throw this.bad(`${where}: ${what} is not ${MAJOR_NAMES[major]} (head 0x${b[i]!.toString(16)})`, null);
      if (i + size > end) throw cut();
      const n = headArg(b, i, size);
      if (typeof n !== 'number') throw this.bad(`${where}: ${what} is beyond 2^53`, null);
      i += size;
      return n;
    };
    const name = (what: string, check: (s: string) => string | null): string => {
      const n = head(what, Major.Text);
      if (n > 255) throw this.bad(`${where}: ${what} is ${n} bytes long (at most 255)`, null);
      if (i + n > end) throw cut();
      let text;
      try {
        text = utf8.decode(b.subarray(i, i + n));
      } catch {
        throw this.bad(`${where}: ${what} is not UTF-8`, null);
      }
      i += n;
      const problem = check(text);
      if (problem) throw this.bad(`${where}: ${problem}`, null);
      return text;
    };
    if (head('it', Major.Array) !== 4) throw this.bad(`${where} is not an array of 4 items [offset, channel, message, data]`, null);
    const offsetMicros = head('its offset', Major.Uint);
    if (offsetMicros < this.lastOffset) throw this.bad(`${where}: its offset ${offsetMicros} µs goes back before the previous item's ${this.lastOffset} µs`, null);
    const channel = name('its channel', (s) => channelProblem(s) ?? (isPattern(s) ? `channel '${s}' is a pattern` : null));
    const message = name('its message', messageProblem);
    const dataLength = head('its data', Major.Bytes);
    const dataAt = this.chunkAt + i;
    if (dataLength > this.size - dataAt) throw cut();
    this.pos = dataAt + dataLength;
    this.lastOffset = offsetMicros;
    const item: RecordItem = { offsetMicros, channel, message, index, at, dataLength };
    if (withData) {
      if (i + dataLength <= this.chunkLen) item.data = this.chunk.subarray(i, i + dataLength);
      else {
        // Checked against the file's size above: never more than the file holds.
        item.data = Buffer.allocUnsafe(dataLength);
        this.readFully(item.data, dataAt);
      }
    }
    return item;
  }

  /** An EINVAL naming the file; `at` (when given) is the byte offset in question. */
  private bad(why: string, at: number | null): QcopError {
    return new QcopError('EINVAL', `${this.file} is not a qcop recording: ${why}${at === null ? '' : ` (at byte ${at})`}`);
  }

  /** Makes the chunk hold `want` bytes from `at` (fewer at the end of the file); returns the index of `at` in it. */
  private window(at: number, want: number): number {
    const need = Math.min(want, this.size - at);
    if (at >= this.chunkAt && at + need <= this.chunkAt + this.chunkLen) return at - this.chunkAt;
    this.chunkAt = at;
    this.chunkLen = 0;
    const n = Math.min(CHUNK, this.size - at);
    this.readFully(this.chunk.subarray(0, n), at);
    this.chunkLen = n;
    return 0;
  }

  private readFully(into: Buffer, at: number): void {
    for (let off = 0; off < into.length; ) {
      let n;
      try {
        n = fs.readSync(this.fd, into, off, into.length - off, at + off);
      } catch (err) {
        throw QcopError.fromSystem(err, `cannot read ${this.file}`);
      }
      if (n === 0) throw this.bad(`the file became shorter while being read (${at + off} of ${this.size} bytes)`, null);
      off += n;
    }
  }

  private readHeader(): RecordHeader {
    if (this.size === 0) throw this.bad('the file is empty (a recording starts with its header)', 0);
    this.window(0, HEADER_MAX);
    const b = this.chunk.subarray(0, this.chunkLen);
    if (b[0]! >> 5 !== Major.Map) throw this.bad(`it does not start with a header map (head 0x${b[0]!.toString(16)})`, 0);
    // The header is the one item before the first message: find its end, then decode it as a control payload.
    const r = new HeadReader(b, 'the header');
    let header: Record<string, unknown>;
    try {
      skip(r, 1);
      header = decodeControl(b.subarray(0, r.at));
    } catch (err) {
      const why = (err as Error).message.replace(/^[A-Z]+: /, '').replace('control payload', 'the header');
      if (/ends inside|beyond its end|announces/.test(why)) {
        if (b.length < this.size) throw this.bad(`the header is larger than ${HEADER_MAX} bytes`, 0);
        throw this.bad(`the header runs past the end of the file (${this.size} bytes): ${why}`, 0);
      }
      throw this.bad(why, 0);
    }
    const version = header['qcop-record'];
    if (version === undefined) throw this.bad('its header has no "qcop-record" key', 0);
    if (version !== RECORD_VERSION) throw this.bad(`its header says format version ${JSON.stringify(version)}; this qcop reads version ${RECORD_VERSION}`, 0);
    for (const key of ['broker', 'host', 'start'] as const) {
      if (typeof header[key] !== 'string') throw this.bad(`its header's "${key}" is not text`, 0);
    }
    const patterns = header.patterns;
    if (!Array.isArray(patterns) || !patterns.every((p) => typeof p === 'string')) throw this.bad('its header\'s "patterns" is not an array of text', 0);
    this.pos = r.at;
    return header as unknown as RecordHeader;
  }
}

const MAJOR_NAMES = ['an unsigned integer', 'a negative integer', 'a byte string', 'text', 'an array', 'a map', 'a tag', 'a simple value'];

/** Moves `r` past one whole item (any of the dialect), refusing nesting deeper than MAX_DEPTH. */
function skip(r: HeadReader, level: number): void {
  if (level > MAX_DEPTH) throw r.refuse(`is nested deeper than ${MAX_DEPTH} levels`);
  const n = r.head();
  switch (r.major) {
    case Major.Bytes:
    case Major.Text:
      r.take(n);
      return;
    case Major.Array:
    case Major.Map: {
      const per = r.major === Major.Map ? 2 : 1;
      const count = r.count(n, per);
      if (count === INDEFINITE) {
        while (!r.atBreak()) for (let k = 0; k < per; k++) skip(r, level + 1);
      } else {
        for (let k = 0; k < count * per; k++) skip(r, level + 1);
      }
      return;
    }
    case Major.Tag:
      skip(r, level + 1);
      return;
    case Major.Simple:
      r.simple(n as number);
      return;
    default:
      return; // integers: the head was all
  }
}
