// The closed set of error codes shared by wire, library and CLI, and the Error class carrying them.

/** Every code qcop produces; a replier's own codes (`E` + capitals/digits) travel beside these. */
export const CODES = {
  EINVAL: 'invalid argument: a bad channel, message, pattern or option',
  EPROTO: 'protocol violation: the stream can no longer be trusted',
  EMSGSIZE: 'a frame or name is larger than the limit',
  ELIMIT: 'a per-connection or broker limit was reached',
  ENOTSUP: 'a request kind or feature this peer does not know',
  ENOLISTENER: 'nobody listens on that channel',
  ETIMEDOUT: 'no answer in time',
  ENOBROKER: 'no broker answers on the socket',
  ECLOSED: 'the client, handle or connection is closed',
  ENOBUFS: "no room: the broker's memory budget, or the client's buffer while disconnected, is full",
  ENOCALL: 'a reply to a call that does not exist or is finished',
  EACCES: 'permission denied',
  EEXIST: 'already exists',
  ENOENT: 'does not exist',
  EADDRINUSE: 'a live broker already owns the socket',
  ENONATIVE: 'the native part is not available',
  EBADSLOT: 'a shared-memory descriptor outside its pool, not owned, or already released',
  ENOSPC: 'no space left for shared memory (/dev/shm is full)',
  EBUSY: 'a device is in use by another process (a serial line)',
  EACTIVATION: 'a service program could not be started, exited or did not register in time (SPEC §10)',
  ESYSTEM: 'a system call failed for a reason none of the other codes names (the message names the call and its errno)',
} as const;

/** The closed set: every code the broker, the library and the CLI produce (PROTOCOL 5.3). */
export type QcopCode = keyof typeof CODES;

/** A replier's own code (`msg.fail(code)`), carried to the caller: `E` plus 1–31 capitals or digits. */
export type ReplierCode = `E${string}`;

/** System errno names with a code of their own in the closed set; the rest become ESYSTEM. */
const ERRNO: Record<string, QcopCode> = {
  ENOENT: 'ENOENT', EEXIST: 'EEXIST', EACCES: 'EACCES', EPERM: 'EACCES', ELOOP: 'EACCES', ENOSPC: 'ENOSPC',
  EADDRINUSE: 'EADDRINUSE', EINVAL: 'EINVAL', ENAMETOOLONG: 'EINVAL', ENOTDIR: 'EINVAL', EMSGSIZE: 'EMSGSIZE',
  EBUSY: 'EBUSY', EMFILE: 'ELIMIT', ENFILE: 'ELIMIT', ENOMEM: 'ENOBUFS', ENOBUFS: 'ENOBUFS', ETIMEDOUT: 'ETIMEDOUT',
};

/** The closed code for a system error's errno name (`err.code` of Node or of the native addon). */
export function codeOfErrno(errno: unknown): QcopCode {
  return (typeof errno === 'string' && ERRNO[errno]) || 'ESYSTEM';
}

/** True when `code` is one of the closed set. */
export function isQcopCode(code: string): code is QcopCode {
  return Object.prototype.hasOwnProperty.call(CODES, code);
}

const CODE_RE = /^E[A-Z0-9]{1,31}$/;

/** True when `code` is shaped like an error code (`E` plus capitals and digits). */
export function isErrorCode(code: string): code is ReplierCode {
  return CODE_RE.test(code);
}

type ErrorOptions = { cause?: unknown; request?: QcopError['request'] };

/**
 * An error with a stable `code` from the closed set (PROTOCOL 5.3), or, for a call, the replier's
 * own code; `request` names the request it answers, when there is one.
 */
export class QcopError extends Error {
  readonly code: QcopCode | ReplierCode;
  readonly request?: { kind: string; channel?: string; message?: string };

  constructor(code: QcopCode, message: string, options?: ErrorOptions);
  /** @internal A code received from a peer: a replier's own (shaped `E...`), else EPROTO. */
  constructor(code: QcopCode | ReplierCode, message: string, options?: ErrorOptions);
  constructor(code: QcopCode | ReplierCode, message: string, options: ErrorOptions = {}) {
    super(`${code}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QcopError';
    this.code = code;
    if (options.request) this.request = options.request;
  }

  /** An error received from a peer (the broker, a replier, a TCP verdict): any code not shaped `E...` is EPROTO. */
  static fromWire(code: string, message: string, options: ErrorOptions = {}): QcopError {
    return new QcopError(isErrorCode(code) ? (code as ReplierCode) : 'EPROTO', isErrorCode(code) ? message : `${message} (malformed code '${code}')`, options);
  }

  /** A failed system call: its errno mapped into the closed set (`codeOfErrno`), named in the message. */
  static fromSystem(err: unknown, what: string): QcopError {
    const errno = (err as { code?: unknown })?.code;
    const code = codeOfErrno(errno);
    const said = (err as Error)?.message ?? String(err);
    // The addon's texts already start with the call they name ("posix_fallocate: No space left on device").
    const text = said.startsWith(`${what}: `) ? said.slice(what.length + 2) : said;
    return new QcopError(code, code === errno ? `${what}: ${text}` : `${what}: ${text}${typeof errno === 'string' && !text.includes(errno) ? ` (${errno})` : ''}`, { cause: err });
  }
}

/** Shorthand used at the validation sites. */
export function fail(code: QcopCode, message: string): never {
  throw new QcopError(code, message);
}
