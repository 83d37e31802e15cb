// Checks the TCP carrier's broker options once, at start: refuses unsafe or malformed settings.
import { QcopError, identityOfUser, type BrokerOptions, type PeerIdentity } from '../../runtime/index.js';
import { isLoopback, parseBrokerUrl, parseListenAddress } from './address.js';
import { TOKEN_RE } from './preamble.js';
import { pem } from './tls.js';

export type LinkOptions = NonNullable<BrokerOptions['links']>[number];

/** The listener's settings, files already read. */
export interface TcpListenOptions {
  host: string;
  port: number;
  token?: string;
  /** No token given on a loopback host: generate one at start and leave it for same-user local clients. */
  localToken?: boolean;
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; requireClientCert: boolean };
  /** SPEC §9: who a client that presented the token is (`tcpUser`); null: nobody. */
  tokenUser: PeerIdentity | null;
  /** SPEC §9: who a client whose verified certificate has this CN is (`tls.users`). */
  certUsers: Map<string, PeerIdentity>;
}

const bad = (what: string): never => {
  throw new QcopError('EINVAL', what);
};

function checkToken(token: unknown, what: string): string | undefined {
  if (token === undefined || token === '') return undefined;
  if (typeof token !== 'string' || !TOKEN_RE.test(token)) bad(`${what} must be 16 to 256 visible ASCII characters (no spaces), e.g. from 'openssl rand -hex 24'`);
  return token as string;
}

/**
 * A token is required (flag, config or $QCOP_TCP_TOKEN), or with TLS client certificates; the
 * only exception is plain `tcpInsecureLoopback` on a loopback host, which must be asked for
 * explicitly (channels/README.md, PROTOCOL 9.4).
 */
export function listenOptions(o: BrokerOptions): TcpListenOptions {
  if (typeof o.tcp !== 'string') bad('option tcp must be "HOST:PORT"');
  const { host, port } = parseListenAddress(o.tcp as string);
  const token = checkToken(o.tcpToken ?? process.env.QCOP_TCP_TOKEN, 'the TCP token (tcpToken, --tcp-token or $QCOP_TCP_TOKEN)');
  const out: TcpListenOptions = { host, port, token, tokenUser: o.tcpUser === undefined ? null : identityOfUser(o.tcpUser), certUsers: new Map() };
  if (o.tls !== undefined) {
    const t = o.tls;
    if (t === null || typeof t !== 'object' || typeof t.cert !== 'string' || typeof t.key !== 'string') bad('option tls needs { cert, key } file paths');
    if (t.requireClientCert && !t.ca) bad('mutual TLS (tls.requireClientCert) needs tls.ca, the CA that signs client certificates');
    // SPEC §8: TLS encrypts but does not say who may connect; a listener open to anyone is refused.
    if (token === undefined && !t.requireClientCert) {
      bad('a TLS listener needs client authentication: option tcpToken (--tcp-token or $QCOP_TCP_TOKEN), or tls.requireClientCert with tls.ca (--tls-require-client-cert --tls-ca FILE)');
    }
    out.tls = { cert: pem(t.cert, 'TLS certificate')!, key: pem(t.key, 'TLS key')!, ca: pem(t.ca, 'TLS CA'), requireClientCert: t.requireClientCert === true };
    if (t.users !== undefined) {
      if (t.users === null || typeof t.users !== 'object' || Array.isArray(t.users)) bad('option tls.users must map certificate CNs to user names or uids');
      if (!t.requireClientCert) bad('option tls.users needs tls.requireClientCert: a CN means something only once the certificate is verified');
      for (const [cn, user] of Object.entries(t.users)) out.certUsers.set(cn, identityOfUser(user));
    }
    return out;
  }
  if (token === undefined) {
    if (o.tcpInsecureLoopback) {
      if (!isLoopback(host)) bad(`--tcp-insecure-loopback is only allowed on a loopback host, not ${host}: use a token or TLS`);
    } else if (isLoopback(host)) {
      // A token is still required; local clients of the same user find the generated one (local-token.ts):
      // whoever has it is that user, unless tcpUser says otherwise (SPEC §9).
      out.localToken = true;
      out.tokenUser ??= identityOfUser(process.geteuid?.() ?? 0);
    } else {
      bad(`plain TCP on ${host} needs a token (--tcp-token, config tcpToken or $QCOP_TCP_TOKEN), or TLS (--tls-cert/--tls-key)`);
    }
  }
  return out;
}

/** Checks one link's settings. */
export function linkOptions(l: LinkOptions, i: number): LinkOptions & { export: string[]; import: string[]; maxBufferedBytes: number } {
  const at = `links[${i}]`;
  if (!l || typeof l !== 'object' || typeof l.url !== 'string') bad(`${at} needs a url (tcp://host:port or tls://host:port)`);
  parseBrokerUrl(l.url);
  const list = (v: unknown, key: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) bad(`${at}.${key} must be a list of channel names or patterns`);
    return v as string[];
  };
  const exp = list(l.export, 'export');
  const imp = list(l.import, 'import');
  if (exp.length + imp.length === 0) bad(`${at} (${l.url}) exports and imports nothing: give --export and/or --import patterns`);
  const max = l.maxBufferedBytes ?? 1 << 20;
  if (!Number.isInteger(max) || max < 4096) bad(`${at}.maxBufferedBytes must be an integer of at least 4096`);
  checkToken(l.token, `${at}.token`);
  return { ...l, export: exp, import: imp, maxBufferedBytes: max };
}
