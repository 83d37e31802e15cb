// Typed interfaces (SPEC §12, Qtopia's QtopiaIpcAdaptor): expose an object's methods as calls on a channel, proxy them back as typed async methods.
import { encodeData } from '../protocol/data.js';
import { QcopError } from '../protocol/errors.js';
import { messageProblem } from '../protocol/names.js';
import type { Client } from './client.js';
import type { Listener } from './handles.js';
import type { ReceivedMessage } from './message.js';
import {
  INTROSPECT, INTROSPECT_NAME, argumentsOf, checkChannel, checkMember, checkTypes, codeOfThrown, exposures, memberName, methodsOf, parseSignature, signatureOf, textOfThrown,
  type ExposeOptions, type InterfaceDescription, type MemberDescription, type Proxied, type ProxyControls, type ProxyOptions, type SignalMap, type SignalName, type SignalSubscription,
} from './typed-wire.js';

export { INTROSPECT, argumentsOf, memberName, signatureOf } from './typed-wire.js';
export type {
  ExposeOptions, InterfaceDescription, MemberDescription, MethodKeys, Proxied, ProxyControls, ProxyMethods, ProxyOptions, ReservedName, SignalMap, SignalName, SignalSubscription, Signatures,
} from './typed-wire.js';

/** The handle `expose()` returns: emit signals, close. */
export class ExposedObject<S extends string = string> {
  /** The channel the object is served on. */
  readonly channel: string;
  private readonly listener: Listener;
  private readonly methods: Map<string, (...args: unknown[]) => unknown>;
  private readonly params = new Map<string, readonly string[]>();
  private readonly signals = new Map<string, string>();
  private readonly published: InterfaceDescription;
  private closedFlag = false;

  /** @internal use `expose()`. */
  constructor(private readonly client: Client, channel: string, private readonly impl: object, options: ExposeOptions<object, S>) {
    checkChannel(channel);
    this.channel = channel;
    this.methods = methodsOf(impl);
    const declared: Record<string, unknown> = { ...(options.description ?? {}) };
    for (const name of this.methods.keys()) checkMember(name, 'method');
    for (const entry of options.signals ?? []) {
      const parsed = typeof entry === 'string' ? parseSignature(entry) : null;
      if (!parsed) throw new QcopError('EINVAL', `signal ${JSON.stringify(entry)} is not a name or a Qt signature`);
      checkMember(parsed.name, 'signal');
      if (this.methods.has(parsed.name)) throw new QcopError('EINVAL', `'${parsed.name}' is both a method and a signal`);
      if (this.signals.has(parsed.name)) throw new QcopError('EINVAL', `signal '${parsed.name}' is declared twice`);
      const given = declared[parsed.name];
      if (entry.includes('(') && given !== undefined && signatureOf(parsed.name, checkTypes(parsed.name, given)) !== signatureOf(parsed.name, parsed.types)) {
        throw new QcopError('EINVAL', `signal '${entry}' and its description ${JSON.stringify(given)} disagree`);
      }
      this.signals.set(parsed.name, signatureOf(parsed.name, given !== undefined ? checkTypes(parsed.name, given) : parsed.types));
    }
    for (const [name, types] of Object.entries(declared)) {
      if (types === undefined) continue;
      if (!this.methods.has(name) && !this.signals.has(name)) throw new QcopError('EINVAL', `the description names '${name}', which is neither a method nor a signal`);
      if (this.methods.has(name)) this.params.set(name, checkTypes(name, types));
    }
    const methods = [...this.methods.keys()].map((name) => ({ name, signature: signatureOf(name, this.params.get(name)) }));
    for (const [name, signature] of [...methods.map((m) => [m.name, m.signature] as const), ...this.signals]) {
      const problem = messageProblem(signature);
      if (problem) throw new QcopError('EINVAL', `${name}: ${problem}`);
    }
    this.published = { methods, signals: [...this.signals].map(([name, signature]) => ({ name, signature })) };
    if (options.interface !== undefined) {
      if (typeof options.interface !== 'string' || options.interface === '') throw new QcopError('EINVAL', 'interface must be a non-empty string');
      this.published = { interface: options.interface, ...this.published };
    }
    const mine = exposures.get(client) ?? new Set<string>();
    if (mine.has(channel)) throw new QcopError('EEXIST', `this client already exposes an object on ${channel}`);
    this.listener = client.listen(channel, (msg) => this.received(msg));
    mine.add(channel);
    exposures.set(client, mine);
  }

  /** Resolves once the broker registered the channel (callers may call from then on); rejects with its refusal. */
  get ready(): Promise<void> {
    return this.listener.ready;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** The description `qcop.introspect()` answers with (a copy). */
  get description(): InterfaceDescription {
    return JSON.parse(JSON.stringify(this.published)) as InterfaceDescription;
  }

  /**
   * Sends the signal as a plain message `signal(types)` on the channel, the arguments as the data
   * (an array; no data for none). Returns `send()`'s high-water verdict. EINVAL for an undeclared signal.
   */
  emit(signal: SignalName<S>, ...args: unknown[]): boolean {
    if (this.closedFlag) throw new QcopError('ECLOSED', `the object exposed on ${this.channel} is closed`);
    const signature = this.signals.get(signal);
    if (signature === undefined) throw new QcopError('EINVAL', `'${signal}' is not a declared signal of ${this.channel} (signals: ${[...this.signals.keys()].join(', ') || 'none'})`);
    return this.client.send(this.channel, signature, args.length > 0 ? args : undefined);
  }

  /** Stops serving: the channel's listener closes (calls then fail with ENOLISTENER once nobody else listens). */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.listener.close();
    exposures.get(this.client)?.delete(this.channel);
  }

  private received(msg: ReceivedMessage): void {
    const name = memberName(msg.message);
    if (name === INTROSPECT_NAME) {
      msg.reply?.(this.published);
      return;
    }
    const method = this.methods.get(name);
    if (!method) {
      // A plain message of another name (a signal, other traffic) is not ours to judge; a call is.
      msg.fail?.('ENOTSUP', `${this.channel} has no method '${name}' (methods: ${[...this.methods.keys()].join(', ') || 'none'})`);
      return;
    }
    let args: unknown[];
    try {
      args = argumentsOf(msg.copyData());
      const params = this.params.get(name);
      if (params && params.length !== args.length) {
        throw new QcopError('EINVAL', `${signatureOf(name, params)} takes ${params.length} argument(s), got ${args.length}`);
      }
    } catch (err) {
      return this.failed(msg, err);
    }
    let result: unknown;
    try {
      result = method.apply(this.impl, args);
    } catch (err) {
      return this.failed(msg, err);
    }
    Promise.resolve(result).then(
      (value) => this.succeeded(msg, name, value),
      (err: unknown) => this.failed(msg, err),
    );
  }

  private succeeded(msg: ReceivedMessage, name: string, value: unknown): void {
    if (!msg.reply) return;
    try {
      encodeData(value); // checked first: a reply that cannot be encoded would leave the caller waiting for its timeout
    } catch (err) {
      msg.fail!('EINVAL', `the result of ${name} cannot be sent as message data: ${(err as Error).message}`);
      return;
    }
    msg.reply(value);
  }

  private failed(msg: ReceivedMessage, err: unknown): void {
    const code = codeOfThrown(err);
    const text = textOfThrown(err, code);
    if (msg.fail) msg.fail(code, text);
    // A plain message has nobody to answer: the client's 'error' event (else a process warning) hears it.
    else this.client.reportError(new QcopError(code, `${msg.message} on ${this.channel}: ${text}`, { cause: err, request: { kind: 'send', channel: this.channel, message: msg.message } }));
  }
}

/**
 * Serves `impl`'s methods on `channel` (SPEC §12): a call (or plain message) named `method(...)`
 * invokes `impl.method(...args)` and a call is answered with its awaited result, or fails with the
 * thrown error's code (EFAIL when it has none); an unknown method fails with ENOTSUP.
 */
export function expose<T extends object, const S extends string = never>(client: Client, channel: string, impl: T, options: ExposeOptions<T, S> = {}): ExposedObject<S> {
  return new ExposedObject<S>(client, channel, impl, options as ExposeOptions<object, S>);
}

/** Calls `qcop.introspect()` on `channel`: ENOLISTENER when nobody listens, EPROTO when the answer is not a description. */
export async function introspect(client: Client, channel: string, options: { timeoutMs?: number } = {}): Promise<InterfaceDescription> {
  const reply = await client.call(channel, INTROSPECT, undefined, options);
  const members = (v: unknown): MemberDescription[] | null =>
    Array.isArray(v) && v.every((m) => typeof m?.name === 'string' && typeof m?.signature === 'string')
      ? v.map((m: MemberDescription) => ({ name: m.name, signature: m.signature }))
      : null;
  const r = reply as Partial<Record<keyof InterfaceDescription, unknown>> | null;
  const methods = members(r?.methods);
  const signals = members(r?.signals);
  if (!methods || !signals || (r?.interface !== undefined && typeof r.interface !== 'string')) {
    throw new QcopError('EPROTO', `the answer of ${channel} to ${INTROSPECT} is not an interface description`);
  }
  return typeof r?.interface === 'string' ? { interface: r.interface, methods, signals } : { methods, signals };
}

type Handler = (...args: unknown[]) => void;

/** The state behind a proxy: calls, and the signal listener (registered only while a handler is on). */
class ProxyCore {
  private listener: Listener | null = null;
  private readonly handlers = new Map<string, Set<Handler>>();
  closed = false;

  constructor(private readonly client: Client, private readonly channel: string, private readonly options: ProxyOptions) {}

  call(name: string, args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new QcopError('ECLOSED', `the proxy of ${this.channel} is closed`));
    const sig = signatureOf(name, this.options.description?.[name]);
    return this.client.call(this.channel, sig, args.length > 0 ? args : undefined, this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs });
  }

  on(signal: string, handler: Handler): SignalSubscription {
    if (this.closed) throw new QcopError('ECLOSED', `the proxy of ${this.channel} is closed`);
    if (typeof signal !== 'string' || memberName(signal) === '') throw new QcopError('EINVAL', 'on() needs a signal name');
    if (typeof handler !== 'function') throw new QcopError('EINVAL', 'on() needs a handler function');
    const name = memberName(signal);
    const set = this.handlers.get(name) ?? new Set<Handler>();
    const entry: Handler = (...args) => handler(...args); // one registration per on(), even for the same function
    set.add(entry);
    this.handlers.set(name, set);
    const listener = (this.listener ??= this.client.listen(this.channel, (msg) => this.received(msg)));
    return {
      get ready() {
        return listener.ready;
      },
      close: () => {
        set.delete(entry);
        if (set.size === 0 && this.handlers.get(name) === set) this.handlers.delete(name);
        if (this.handlers.size === 0) this.stopListening();
      },
    };
  }

  close(): void {
    this.closed = true;
    this.handlers.clear();
    this.stopListening();
  }

  private stopListening(): void {
    this.listener?.close();
    this.listener = null;
  }

  private received(msg: ReceivedMessage): void {
    if (msg.isCall) {
      // Listening for signals must not make callers wait for this process, unless it serves the channel itself.
      if (!exposures.get(this.client)?.has(this.channel)) msg.decline!();
      return;
    }
    const set = this.handlers.get(memberName(msg.message));
    if (!set) return;
    let args: unknown[];
    try {
      args = argumentsOf(msg.copyData());
    } catch (err) {
      this.client.reportError(err as Error);
      return;
    }
    for (const h of [...set]) h(...args);
  }
}

const NOT_METHODS = new Set<string>(['then', 'toJSON', ...Object.getOwnPropertyNames(Object.prototype)]);

/**
 * A typed stand-in for the object exposed on `channel` (SPEC §12), built with a JS Proxy: no
 * description is needed, every property name becomes a method that calls `name(types)` with the
 * arguments as data (docs/TYPED.md §3). `on(signal, handler)` receives the object's signals.
 */
export function proxy<T extends object, G extends SignalMap = SignalMap>(client: Client, channel: string, options: ProxyOptions = {}): Proxied<T, G> {
  checkChannel(channel);
  const core = new ProxyCore(client, channel, options);
  const controls: ProxyControls<SignalMap> = {
    on: (signal, handler) => core.on(signal, handler as Handler),
    close: () => core.close(),
  };
  const made = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  const target: object = {};
  return new Proxy(target, {
    get(_, key) {
      if (typeof key !== 'string') return undefined;
      if (key === 'on' || key === 'close') return controls[key];
      if (NOT_METHODS.has(key) || key.startsWith('_')) return undefined;
      let m = made.get(key);
      if (!m) {
        m = (...args: unknown[]) => core.call(key, args);
        made.set(key, m);
      }
      return m;
    },
    set: () => false,
    defineProperty: () => false,
  }) as Proxied<T, G>;
}
