// The names a client sends on: validated once (SPEC §1), and their UTF-8 bytes cached for the frames.
import { QcopError } from '../protocol/errors.js';
import { NameBytes, channelProblem, isPattern, messageProblem } from '../protocol/names.js';

/** Bounded caches: a program that makes up names forever empties them now and then. */
const MAX_CACHED = 4096;

/** Channel and message names already found valid, and their bytes. */
export class SendNames {
  private readonly channels = new Set<string>();
  private readonly messages = new Set<string>();
  private readonly bytes = new NameBytes();

  /** EINVAL for a malformed channel, or a pattern where a concrete channel is needed. */
  checkChannel(channel: string, concrete: boolean): void {
    if (!this.channels.has(channel)) {
      const problem = channelProblem(channel);
      if (problem) throw new QcopError('EINVAL', problem);
    }
    if (concrete && isPattern(channel)) throw new QcopError('EINVAL', `'${channel}' is a pattern; a message goes to a concrete channel`);
    if (this.channels.size > MAX_CACHED) this.channels.clear();
    this.channels.add(channel);
  }

  /** EINVAL unless `channel` is concrete and `message` a valid message name. */
  check(channel: string, message: string): void {
    this.checkChannel(channel, true);
    if (!this.messages.has(message)) {
      const problem = messageProblem(message);
      if (problem) throw new QcopError('EINVAL', problem);
      if (this.messages.size > MAX_CACHED) this.messages.clear();
      this.messages.add(message);
    }
  }

  /** The UTF-8 bytes of a name (checked before). */
  bytesOf(name: string): Buffer {
    return this.bytes.get(name);
  }
}
