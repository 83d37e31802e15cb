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
} as const;

export type QcopCode = keyof typeof CODES;

const CODE_RE = /^E[A-Z0-9]{1,31}$/;

/** True when `code` is shaped like an error code (`E` plus capitals and digits). */
export function isErrorCode(code: string): boolean {
  return CODE_RE.test(code);
}

/** An error with a stable `code`; `request` names the request it answers, when there is one. */
export class QcopError extends Error {
  readonly code: string;
  readonly request?: { kind: string; channel?: string; message?: string };

  constructor(code: string, message: string, options: { cause?: unknown; request?: QcopError['request'] } = {}) {
    super(`${code}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QcopError';
    this.code = code;
    if (options.request) this.request = options.request;
  }
}

/** Shorthand used at the validation sites. */
export function fail(code: QcopCode, message: string): never {
  throw new QcopError(code, message);
}
