// After a policy reload (SPEC §9): what the new policy no longer allows is taken back from the connections that hold it.
import { Kind } from '../protocol/constants.js';
import { isPattern } from '../protocol/names.js';
import type { BrokerCore } from './broker.js';
import type { Connection } from './connection.js';

/** A listener name or watch no longer allowed is removed, and its client hears EACCES for it (an error frame naming it, PROTOCOL 5.3). */
export function revoke(b: BrokerCore, conns: Iterable<Connection>): void {
  for (const c of conns) {
    for (const name of [...c.listening]) {
      if (b.access.check(c, 'listen', name, isPattern(name))) continue;
      c.listening.delete(name);
      b.registry.remove(name, c);
      b.quotas.give(c, 'listeners');
      c.error('EACCES', `the policy no longer lets this user listen on ${name}`, 0, Kind.Listen, name);
    }
    for (const [id, w] of [...c.watches]) {
      if (b.access.check(c, 'watch', w.name, isPattern(w.name))) continue;
      c.watches.delete(id);
      b.watches.remove(w);
      b.quotas.give(c, 'watches');
      c.error('EACCES', `the policy no longer lets this user watch ${w.name}`, id, Kind.Watch, w.name);
    }
  }
}
