// The bystander of a scenario: one client sending numbered messages to another every few ms, which must receive
// every one of them in order whatever happens to the other clients of the broker.
import { connect, type Client } from '../../runtime/index.js';

export class Bystander {
  sent = 0;
  got = 0;
  outOfOrder = 0;
  errors: string[] = [];
  private timer: NodeJS.Timeout | null = null;

  private constructor(readonly tx: Client, readonly rx: Client, readonly channel: string) {}

  static async start(socket: string, channel = 'rel/bystander', everyMs = 10): Promise<Bystander> {
    const rx = await connect({ socket, name: 'bystander-rx' });
    let down = 0;
    const tx = await connect({ socket, name: 'bystander-tx' });
    const b = new Bystander(tx, rx, channel);
    for (const c of [tx, rx]) c.on('disconnected', () => { if (b.errors.length < 5) b.errors.push(`${c === tx ? 'sender' : 'receiver'} disconnected (${++down})`); });
    for (const c of [tx, rx]) c.on('error', (e) => b.errors.length < 5 && b.errors.push(`${(e as { code?: string }).code}: ${e.message}`));
    await rx.listen(channel, (m) => {
      if (m.data !== b.got) b.outOfOrder++;
      b.got = (m.data as number) + 1;
    }).ready;
    b.timer = setInterval(() => {
      if (tx.bufferedBytes >= 1 << 19) return;
      try {
        tx.send(channel, 'seq(int)', b.sent);
        b.sent++;
      } catch (e) {
        if (b.errors.length < 5) b.errors.push(`send refused: ${(e as Error).message}`);
      }
    }, everyMs);
    return b;
  }

  /** Stops sending and waits until everything sent arrived (or `timeoutMs`); true when all arrived in order. */
  async stop(timeoutMs = 10000): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.tx.flush().catch((e) => this.errors.push(`flush: ${e.message}`));
    const deadline = Date.now() + timeoutMs;
    while (this.got < this.sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.got === this.sent && this.outOfOrder === 0 && this.errors.length === 0;
  }

  describe(): string {
    return `bystander ${this.sent} numbered messages, ${this.got} received${this.outOfOrder ? `, ${this.outOfOrder} out of order` : ', in order'}${this.errors.length ? `; errors: ${this.errors.join('; ')}` : ''}`;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.tx.close();
    await this.rx.close();
  }
}
