// The names a client sends on: validated once (SPEC §1), kept with their UTF-8 bytes for the frames.
import { QcopError } from '../protocol/errors.js';
import { channelProblem, isPattern, messageProblem } from '../protocol/names.js';

/** Bounded caches: a program that makes up names forever empties them now and then. */
const MAX_CACHED = 4096;

/** Channel and message names already found valid, each with its bytes. */
export class SendNames {
  private readonly channels = new Map<string, Buffer>();
  private readonly messages = new Map<string, Buffer>();

  /** EINVAL for a malformed channel, or a pattern where a concrete channel is needed. */
  checkChannel(channel: string, concrete: boolean): void {
    const known = this.channels.has(channel);
    if (!known) {
      const problem = channelProblem(channel);
      if (problem) throw new QcopError('EINVAL', problem);
    }
    if (concrete && isPattern(channel)) throw new QcopError('EINVAL', `'${channel}' is a pattern; a message goes to a concrete channel`);
    if (!known) remember(this.channels, channel);
  }

  /** EINVAL unless `channel` is concrete and `message` a valid message name. */
  check(channel: string, message: string): void {
    this.checkChannel(channel, true);
    if (!this.messages.has(message)) {
      const problem = messageProblem(message);
      if (problem) throw new QcopError('EINVAL', problem);
      remember(this.messages, message);
    }
  }

  /** The UTF-8 bytes of a channel checked before. */
  channelBytes(channel: string): Buffer {
    return this.channels.get(channel) ?? Buffer.from(channel, 'utf8');
  }

  /** The UTF-8 bytes of a message name checked before. */
  messageBytes(message: string): Buffer {
    return this.messages.get(message) ?? Buffer.from(message, 'utf8');
  }
}

function remember(cache: Map<string, Buffer>, name: string): void {
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(name, Buffer.from(name, 'utf8'));
}
