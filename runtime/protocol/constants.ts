// The wire protocol's numbers in one place: frame layout, kinds, flags, defaults (docs/PROTOCOL.md).

/** Protocol version spoken by this implementation (PROTOCOL 2.1). */
export const PROTOCOL_VERSION = 1;

/** Size of the fixed frame header, length prefix included (PROTOCOL 1.2). */
export const HEADER_SIZE = 16;

/** Byte offsets of the header fields (PROTOCOL 1.2). */
export const enum Off {
  Length = 0,
  Kind = 4,
  Flags = 5,
  ChannelLen = 6,
  MessageLen = 7,
  Id = 8,
  Aux = 12,
}

/** Frame kinds (PROTOCOL 3). Client-to-broker kinds are below 0x40, broker-to-client from 0x40. */
export const enum Kind {
  Hello = 0x01, //       c→b  first frame: client name, pid, version, features
  Listen = 0x02, //      c→b  register a listener name (channel or pattern)
  Unlisten = 0x03, //    c→b  drop a listener name
  Send = 0x04, //        c→b  route a message; flag WantCount asks for a receiver count
  Flush = 0x05, //       c→b  ask for the counts of sends routed since the previous flush
  Query = 0x06, //       c→b  isRegistered(channel)
  Watch = 0x07, //       c→b  start reporting registration events for a name or pattern
  Unwatch = 0x08, //     c→b  stop a watch
  Call = 0x09, //        c→b  request to every listening process; aux = timeout in ms
  Reply = 0x0a, //       c→b  answer to a call; flag Error for a failure
  Stats = 0x0b, //       c→b  ask for the broker's figures
  Pool = 0x0c, //        c→b  announce a shared-memory pool segment; aux = segment index (PROTOCOL 8.2)
  Release = 0x0d, //     c→b  a receiver is done with a shared-memory message; aux = token (PROTOCOL 8.4)
  Ack = 0x0e, //         c→b  a message of a queued channel was handled; id = the Msg id (PROTOCOL 3.16, SPEC §10)
  Monitor = 0x10, //     c→b  start, change or stop monitoring (PROTOCOL 3.15, SPEC §12)
  Welcome = 0x41, //     b→c  answer to hello: broker limits and features
  Msg = 0x42, //         b→c  a routed message; flag Call when a reply is expected
  Result = 0x43, //      b→c  success answer to a request; aux and payload depend on the request
  Error = 0x44, //       b→c  failure answer (id = request id) or stream error (id = 0)
  Event = 0x45, //       b→c  registration event for a watch
  Lost = 0x46, //        b→c  aux = messages dropped for this receiver since the last Lost
  Freed = 0x47, //       b→c  aux = a sender's pool slot every receiver released (PROTOCOL 8.5)
  Lagging = 0x48, //     b→c  aux = a sender's slot now held only by slow receivers (PROTOCOL 8.5)
  Monitored = 0x4c, //   b→c  one broker event for a monitor; payload = control map (PROTOCOL 3.15)
}

/** Flag bits (PROTOCOL 1.3). */
export const enum Flag {
  WantCount = 0x01, //   Send: answer with Result(aux = receivers)
  Call = 0x02, //        Msg: a call; id is the broker's call id to answer with Reply
  Failure = 0x04, //     Reply: payload is text, message field is the error code
  Initial = 0x08, //     Event: part of the state reported when the watch started
  Registered = 0x10, //  Event: registered (unset: unregistered)
  Shm = 0x20, //         Send/Msg: the payload is a shared-memory descriptor (PROTOCOL 8.3)
  Decline = 0x40, //     Reply: this process will not answer the call (no payload)
  Retire = 0x80, //      Pool: withdraw segment aux; the broker lets go once its slots are released
  // SPEC §10 (PROTOCOL 3.16): bits reused on kinds where the ones above mean nothing.
  Queued = 0x01, //      Msg: acknowledge with Ack once handled; Result of Send: the message was stored
  Redelivered = 0x04, // Msg: delivered before without acknowledgement
  Retained = 0x08, //    Msg: the channel's retained value, sent to a new listener
  Retain = 0x10, //      Send: keep this message as the channel's retained value (no data: clear it)
}

/** Largest value of a name length field: names are 1–255 bytes (SPEC §1). */
export const MAX_NAME_BYTES = 255;

/** Broker limits announced in Welcome (PROTOCOL 2.2), with their defaults. */
export interface Limits {
  /** Largest frame accepted, header included. */
  maxFrameBytes: number;
  /** Most listener names one connection may register. */
  maxListeners: number;
  /** Most watches one connection may hold. */
  maxWatches: number;
  /** Bytes queued towards one connection before the slow-consumer policy applies. */
  maxQueueBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxFrameBytes: 1 << 20,
  maxListeners: 4096,
  maxWatches: 1024,
  maxQueueBytes: 8 << 20,
};

/** Default call timeout in milliseconds (SPEC §2). */
export const DEFAULT_CALL_TIMEOUT_MS = 5000;

/** Longest call timeout the broker honours before forgetting a call (PROTOCOL 3.10). */
export const MAX_CALL_TIMEOUT_MS = 24 * 3600 * 1000;

/** Feature names a peer may announce in Hello/Welcome (PROTOCOL 2.3). */
export const FEATURES = ['lost', 'call', 'watch', 'noecho', 'shm', 'durable'] as const;
export type Feature = (typeof FEATURES)[number];

/** The features every peer of this version announces; `noecho` (client, on request) and `shm` (when usable) are added to them. */
export const BASE_FEATURES: readonly Feature[] = ['lost', 'call', 'watch'];

/** Data above this many bytes go through the sender's shared-memory pool (PROTOCOL 8.1). */
export const DEFAULT_SHM_THRESHOLD = 64 << 10;

/** Largest pool one client may announce, all its segments together (PROTOCOL 8.2). */
export const DEFAULT_MAX_POOL_BYTES = 128 << 20;

/** Bytes of a Send|Shm descriptor: slot, segment, offset, length, each u32 LE (PROTOCOL 8.3). */
export const SEND_DESCRIPTOR_BYTES = 16;

/** Fixed part of a Msg|Shm descriptor: token, offset, length, segment size; the segment name follows (PROTOCOL 8.3). */
export const MSG_DESCRIPTOR_BYTES = 16;

/** Human names of the kinds, for error texts and tracing. */
export const KIND_NAMES: Record<number, string> = {
  0x01: 'hello', 0x02: 'listen', 0x03: 'unlisten', 0x04: 'send', 0x05: 'flush', 0x06: 'query',
  0x07: 'watch', 0x08: 'unwatch', 0x09: 'call', 0x0a: 'reply', 0x0b: 'stats', 0x0c: 'pool', 0x0d: 'release', 0x0e: 'ack', 0x10: 'monitor',
  0x41: 'welcome', 0x42: 'msg', 0x43: 'result', 0x44: 'error', 0x45: 'event', 0x46: 'lost', 0x47: 'freed', 0x48: 'lagging', 0x4c: 'monitored',
};
