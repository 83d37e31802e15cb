// Per-channel figures for `qcop top` (SPEC §12): kept only while somebody asks for them, so a
// broker nobody watches pays one boolean test per message (docs/MONITOR.md "qcop top").

/** Channels counted one by one; messages on further channels are added up under OTHER. */
export const MAX_FIGURE_CHANNELS = 4096;

/** Counting stops this long after the last request that asked for channel figures. */
export const FIGURES_IDLE_MS = 10_000;

/** The entry for messages on channels past MAX_FIGURE_CHANNELS. */
export const OTHER = '(other channels)';

interface Figures {
  messages: number;
  bytes: number;
  dropped: number;
}

export class ChannelFigures {
  /** True while counting: the send handler tests this first. */
  on = false;
  private figures = new Map<string, Figures>();
  private since = 0;
  private timer: NodeJS.Timeout | null = null;

  /** A request asked for the figures: counting starts (or goes on) for FIGURES_IDLE_MS more. */
  asked(): void {
    if (!this.on) {
      this.on = true;
      this.since = Date.now();
      this.figures.clear();
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.stop(), FIGURES_IDLE_MS);
    this.timer.unref?.();
  }

  stop(): void {
    this.on = false;
    this.figures.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One message on `channel` of `bytes` data bytes, dropped for `dropped` of its receivers. */
  count(channel: string, bytes: number, dropped: number): void {
    let f = this.figures.get(channel);
    if (!f) {
      const key = this.figures.size < MAX_FIGURE_CHANNELS ? channel : OTHER;
      f = this.figures.get(key);
      if (!f) this.figures.set(key, (f = { messages: 0, bytes: 0, dropped: 0 }));
    }
    f.messages++;
    f.bytes += bytes;
    f.dropped += dropped;
  }

  /** What a stats answer carries: counts since `since` (ms since the epoch), with each channel's receivers now. */
  report(receivers: (channel: string) => number): Record<string, unknown> {
    const channels = [...this.figures].map(([channel, f]) => ({ channel, ...f, receivers: channel === OTHER ? null : receivers(channel) }));
    return { since: this.since, channels };
  }
}
