// Names one broker has seen valid recently (PROTOCOL 4): validation then costs one lookup on the hot path.
import { channelProblem, messageProblem } from '../protocol/names.js';

/** Most names each cache keeps; past it the cache starts again (a peer sending ever new names costs a check each). */
const VALID_CACHE = 4096;

export class ValidNames {
  private readonly channels = new Set<string>();
  private readonly messages = new Set<string>();

  /** What is wrong with a channel or pattern name, or null when it is valid. */
  channelProblem(name: string): string | null {
    return this.check(this.channels, name, channelProblem);
  }

  /** What is wrong with a message name, or null when it is valid. */
  messageProblem(name: string): string | null {
    return this.check(this.messages, name, messageProblem);
  }

  private check(seen: Set<string>, name: string, problemOf: (name: string) => string | null): string | null {
    if (seen.has(name)) return null;
    const problem = problemOf(name);
    if (problem) return problem;
    if (seen.size >= VALID_CACHE) seen.clear();
    seen.add(name);
    return null;
  }
}
