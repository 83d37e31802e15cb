// PROTOCOL 1.2: a frame started must be complete within `partialFrameTimeoutMs`. One timer per connection,
// armed once and checked when it fires: a stream of frames pays one clock read per chunk that ends inside a frame.
import type { FrameParser } from '../protocol/parser.js';

export class PartialClock {
  private timer: NodeJS.Timeout | null = null;
  private mark = -1;
  private since = 0;

  /**
   * `paused` says the broker paused the stream itself (fair turns, backpressure): then the frame cannot
   * finish and the time does not count. `expired` is told once the limit passed with the frame incomplete.
   */
  constructor(
    private readonly parser: FrameParser,
    private readonly limitMs: number,
    private readonly paused: () => boolean,
    private readonly expired: (limitMs: number) => void,
  ) {}

  /** After a chunk that ended inside a frame. */
  started(): void {
    const mark = this.parser.framesEnded;
    if (mark !== this.mark) {
      this.mark = mark;
      this.since = Date.now();
    }
    if (this.timer) return;
    this.arm(this.limitMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.due(), ms);
    this.timer.unref?.();
  }

  private due(): void {
    this.timer = null;
    if (!this.parser.midFrame) return;
    if (this.paused()) this.since = Date.now();
    const left = this.since + this.limitMs - Date.now();
    if (left <= 0) return this.expired(this.limitMs);
    this.arm(left);
  }
}
