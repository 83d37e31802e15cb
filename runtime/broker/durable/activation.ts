// Activation (SPEC §10): placeholder until services land.
import type { Frame } from '../../protocol/frame.js';
import type { BrokerCore } from '../broker.js';
import type { Connection } from '../connection.js';

export class Activation {
  constructor(_b: BrokerCore, _o: { servicesDir?: string }) {}
  park(_c: Connection, _f: Frame, _channel: string): boolean {
    return false;
  }
  wanted(_channel: string): void {}
  registered(_name: string): void {}
  closed(_c: Connection): void {}
  stats(): Record<string, unknown> {
    return {};
  }
  close(): void {}
}
