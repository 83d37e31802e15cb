// Channel names as D-Bus object paths and bus names, reversibly (escape rules in channels/dbus/README.md).

/** Where channel objects live: `QPE/System` is `/org/qcop/channel/QPE/System`. */
export const CHANNEL_ROOT = '/org/qcop/channel';
/** The bridge's own object, which carries the `Send` method. */
export const BRIDGE_PATH = '/org/qcop';
/** Prefix of the bus names that show a registered channel: `org.qcop.Channel.QPE.System`. */
export const PRESENCE_PREFIX = 'org.qcop.Channel';
export const INTERFACE = 'org.qcop.Channel1';

/** Escapes one segment: ASCII letters and digits stay, every other byte becomes `_` and two lowercase hex digits. */
export function escapeSegment(segment: string, noLeadingDigit = false): string {
  let out = '';
  const bytes = Buffer.from(segment, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
    const digitFirst = noLeadingDigit && i === 0 && b >= 0x30 && b <= 0x39;
    out += alnum && !digitFirst ? String.fromCharCode(b) : '_' + b.toString(16).padStart(2, '0');
  }
  return out;
}

/** Reverses `escapeSegment`; null when the text is not an escaped segment. */
export function unescapeSegment(text: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '_') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (/[A-Za-z0-9]/.test(c)) {
      bytes.push(c.charCodeAt(0));
    } else {
      return null;
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(bytes));
  } catch {
    return null;
  }
}

/** The object path of a channel name. */
export function channelToPath(channel: string): string {
  return `${CHANNEL_ROOT}/${channel.split('/').map((s) => escapeSegment(s)).join('/')}`;
}

/** The channel name of an object path under CHANNEL_ROOT, or null. */
export function pathToChannel(path: string): string | null {
  if (!path.startsWith(CHANNEL_ROOT + '/')) return null;
  const parts = path.slice(CHANNEL_ROOT.length + 1).split('/').map(unescapeSegment);
  return parts.some((p) => p === null || p === '') ? null : parts.join('/');
}

/** The bus name that shows a channel is registered, or null when it would exceed D-Bus's 255 characters. */
export function channelToBusName(channel: string): string | null {
  const name = `${PRESENCE_PREFIX}.${channel.split('/').map((s) => escapeSegment(s, true)).join('.')}`;
  return name.length <= 255 ? name : null;
}
