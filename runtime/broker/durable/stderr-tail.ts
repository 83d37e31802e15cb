// The last lines a started program wrote to stderr, for EACTIVATION (SPEC §10).

/** Lines kept, and bytes at most. */
export const TAIL_LINES = 10;
const TAIL_BYTES = 4096;

export class StderrTail {
  private text = '';

  /** Adds what the program wrote; keeps only the end. */
  add(chunk: Buffer): void {
    this.text += chunk.toString('utf8');
    if (this.text.length > 4 * TAIL_BYTES) this.text = this.text.slice(-TAIL_BYTES);
  }

  /** The last TAIL_LINES lines (at most 4 KiB), without a final newline. */
  lines(): string {
    const lines = this.text.replace(/\n+$/, '').split('\n');
    const out = lines.slice(-TAIL_LINES).join('\n');
    return out.length > TAIL_BYTES ? out.slice(-TAIL_BYTES) : out;
  }
}
