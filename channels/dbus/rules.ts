// D-Bus match rules (`type='signal',interface='…',member='…'`): parsed once, checked against each incoming signal.

export interface MatchRule {
  text: string;
  keys: Record<string, string>;
}

const SUPPORTED = new Set(['type', 'sender', 'interface', 'member', 'path', 'path_namespace']);

/** Parses a match rule; throws on syntax it does not support (arg matches included). */
export function parseRule(text: string): MatchRule {
  const keys: Record<string, string> = {};
  const re = /\s*([a-z_0-9]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*(,|$)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < text.length && (m = re.exec(text))) {
    if (!SUPPORTED.has(m[1]!)) throw new Error(`match key '${m[1]}' is not supported (use ${[...SUPPORTED].join(', ')})`);
    keys[m[1]!] = m[2]!;
    at = re.lastIndex;
  }
  if (at !== text.length || Object.keys(keys).length === 0) throw new Error(`'${text}' is not a match rule like type='signal',interface='org.example.X'`);
  if (keys.type !== undefined && keys.type !== 'signal') throw new Error(`only signals can be imported (type='signal')`);
  keys.type = 'signal';
  return { text: Object.entries(keys).map(([k, v]) => `${k}='${v}'`).join(','), keys };
}

/** What a rule compares against. */
export interface SignalHeader {
  sender?: string;
  interface?: string;
  member?: string;
  path?: string;
}

export function ruleMatches(r: MatchRule, s: SignalHeader): boolean {
  const k = r.keys;
  // A well-known sender name is resolved by the bus daemon, which delivers only what matches;
  // the signal carries the unique name, so only a unique name (`:1.42`) is compared here.
  if (k.sender !== undefined && k.sender.startsWith(':') && s.sender !== k.sender) return false;
  if (k.interface !== undefined && s.interface !== k.interface) return false;
  if (k.member !== undefined && s.member !== k.member) return false;
  if (k.path !== undefined && s.path !== k.path) return false;
  if (k.path_namespace !== undefined) {
    const ns = k.path_namespace;
    if (!(s.path === ns || s.path?.startsWith(ns === '/' ? '/' : ns + '/'))) return false;
  }
  return true;
}
