// The wire convention of typed interfaces (docs/TYPED.md): message names, argument lists, signatures, error codes, and the public types.
import { QcopError, isErrorCode, type ReplierCode } from '../protocol/errors.js';
import { channelProblem, isPattern } from '../protocol/names.js';
import type { Client } from './client.js';

/** The call every exposed object answers with its `InterfaceDescription` (docs/TYPED.md §4). */
export const INTROSPECT = 'qcop.introspect()';
export const INTROSPECT_NAME = 'qcop.introspect';

/** Parameter types per method or signal name, in Qt's spelling: `{ setVolume: ['int'] }`. */
export type Signatures = { readonly [name: string]: readonly string[] };

/** One method or signal as introspection publishes it. */
export interface MemberDescription {
  name: string;
  /** `name(T1,T2)`: the message name; `name()` when its parameter types were not declared. */
  signature: string;
}

/** What `qcop.introspect()` answers and `qcop introspect CHANNEL` prints. */
export interface InterfaceDescription {
  interface?: string;
  methods: MemberDescription[];
  signals: MemberDescription[];
}

/** The names of `T`'s methods that can be exposed and proxied (strings, not starting with `_`). */
export type MethodKeys<T> = {
  [K in keyof T]-?: K extends `_${string}` ? never : K extends string ? (T[K] extends (...args: never[]) => unknown ? K : never) : never;
}[keyof T];

/** A signal's name from how it was declared: `volumeChanged(int)` → `volumeChanged`. */
export type SignalName<S extends string> = S extends `${infer N}(${string}` ? N : S;

/** Options of `expose()`. */
export interface ExposeOptions<T, S extends string> {
  /** Signals the object emits, as names (`volumeChanged`) or Qt signatures (`volumeChanged(int)`). */
  signals?: readonly S[];
  /** Parameter types of methods and signals, which make their signatures: `{ setVolume: ['int'] }`. */
  description?: { readonly [K in MethodKeys<T> | SignalName<S>]?: readonly string[] };
  /** An interface name that introspection publishes, e.g. `org.example.Volume`. */
  interface?: string;
}

/** Signal name → argument tuple, for `proxy<T, G>()`: `{ volumeChanged: [level: number] }`. */
export type SignalMap = Record<string, unknown[]>;

/** `T`'s methods as the proxy has them: same parameters, the awaited result in a promise. */
export type ProxyMethods<T> = {
  [K in MethodKeys<T>]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

/** A signal handler registration; `ready` resolves once the broker registered the proxy's listener. */
export interface SignalSubscription {
  readonly ready: Promise<void>;
  close(): void;
}

/** What every proxy has besides `T`'s methods. */
export interface ProxyControls<G extends SignalMap> {
  /** Calls `handler(...args)` for each signal `signal` emitted on the channel. */
  on<K extends keyof G & string>(signal: K, handler: (...args: G[K]) => void): SignalSubscription;
  /** Stops the signal subscriptions; later method calls reject with ECLOSED. The client stays open. */
  close(): void;
}

/** Property names a proxy never turns into calls (docs/TYPED.md §3). */
export type ReservedName = 'on' | 'close' | 'then' | 'toJSON' | keyof object;

/** The object `proxy<T, G>()` returns. */
export type Proxied<T, G extends SignalMap = SignalMap> = Omit<ProxyMethods<T>, ReservedName> & ProxyControls<G>;

/** Options of `proxy()`. */
export interface ProxyOptions {
  /** Per-call timeout (default: `call()`'s 5 s). */
  timeoutMs?: number;
  /** Parameter types of the methods, for the message names the proxy sends (else `name()`). */
  description?: Signatures;
}

// Channels each client exposes on: a second expose there is refused, and a proxy of the same client does not decline calls there.
export const exposures = new WeakMap<Client, Set<string>>();

/** A message or signature's member name: the part before `(` (the whole name when there is none). */
export function memberName(message: string): string {
  const i = message.indexOf('(');
  return i < 0 ? message : message.slice(0, i);
}

/** The arguments carried by message data: an array is the argument list, no data none, anything else one bare argument. */
export function argumentsOf(data: unknown): unknown[] {
  if (data === undefined) return [];
  return Array.isArray(data) ? data : [data];
}

/** `name(T1,T2)`, or `name()` when the types are not known. */
export function signatureOf(name: string, types: readonly string[] | undefined): string {
  return `${name}(${(types ?? []).join(',')})`;
}

/** The parameter types of a Qt signature `name(T1,T2)`: commas inside `<...>` belong to a type. */
export function parseSignature(sig: string): { name: string; types: string[] } | null {
  const open = sig.indexOf('(');
  if (open < 0) return { name: sig, types: [] };
  if (!sig.endsWith(')') || open === 0) return null;
  const inner = sig.slice(open + 1, -1);
  const types: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= inner.length; i++) {
    const c = inner[i];
    if (c === '(' || c === ')') return null;
    if (c === '<') depth++;
    else if (c === '>') depth--;
    else if ((c === ',' && depth === 0) || i === inner.length) {
      const t = inner.slice(start, i).trim();
      if (t) types.push(t);
      else if (inner.trim() !== '') return null;
      start = i + 1;
    }
  }
  return depth === 0 ? { name: sig.slice(0, open), types } : null;
}

/** @internal A description's parameter list for `name`, checked: Qt type names that make a signature parsing back to them. */
export function checkTypes(name: string, types: unknown): readonly string[] {
  const ok = Array.isArray(types) && types.every((t) => typeof t === 'string');
  const parsed = ok ? parseSignature(signatureOf(name, types as string[])) : null;
  if (!parsed || parsed.types.length !== (types as string[]).length || parsed.types.some((t, i) => t !== (types as string[])[i])) {
    throw new QcopError('EINVAL', `the parameter types of '${name}' must be a list of Qt type names, got ${JSON.stringify(types)}`);
  }
  return types as string[];
}

/** @internal EINVAL for a name that cannot be a method or signal (empty, with parentheses, or the introspection call). */
export function checkMember(name: string, what: string): void {
  if (name === '' || name.includes('(') || name.includes(')') || name === INTROSPECT_NAME) {
    throw new QcopError('EINVAL', `'${name}' cannot be the name of a ${what}`);
  }
}

/** @internal The methods of `impl`: own and inherited functions, not `constructor`, not named `_...`, above Object.prototype. */
export function methodsOf(impl: object): Map<string, (...args: unknown[]) => unknown> {
  const found = new Map<string, (...args: unknown[]) => unknown>();
  const seen = new Set<string>();
  for (let o: object | null = impl; o && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (seen.has(key)) continue; // shadowed by a nearer property, function or not
      seen.add(key);
      if (key === 'constructor' || key.startsWith('_')) continue;
      const d = Object.getOwnPropertyDescriptor(o, key);
      if (d && typeof d.value === 'function') found.set(key, d.value as (...args: unknown[]) => unknown);
    }
  }
  return found;
}

/** The code a thrown value answers with: its own `code` when shaped `E` + capitals/digits, else EFAIL. */
export function codeOfThrown(err: unknown): ReplierCode {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && isErrorCode(code) ? code : 'EFAIL';
}

/** @internal The text a thrown value answers with, without a leading `CODE: ` (the caller's error adds it again). */
export function textOfThrown(err: unknown, code: string): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.startsWith(`${code}: `) ? text.slice(code.length + 2) : text;
}

/** @internal EINVAL unless `channel` is a valid concrete channel. */
export function checkChannel(channel: string): void {
  const problem = channelProblem(channel);
  if (problem) throw new QcopError('EINVAL', problem);
  if (isPattern(channel)) throw new QcopError('EINVAL', `'${channel}' is a pattern; a typed interface lives on a concrete channel`);
}
