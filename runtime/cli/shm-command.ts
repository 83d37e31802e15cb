// `qcop shm ls|gc`: shared segments and semaphores; reclaim the stale ones (SPEC §3, §4).
import { printJson } from './connect-flags.js';
import { UsageError, type Command } from './table.js';

export const shm: Command = {
  name: 'shm',
  summary: 'Shared memory: `ls` prints the segments as a JSON array, `gc` removes the stale ones.',
  usage: 'qcop shm ls|gc',
  flags: { help: { type: 'boolean', description: 'show this help' } },
  positionals: { min: 1, max: 1 },
  async run(args) {
    const verb = args.positionals[0];
    if (verb !== 'ls' && verb !== 'gc') throw new UsageError(`unknown shm command '${verb}' (ls or gc)`);
    const spec = '../shm/index.js';
    const mod = (await import(spec)) as { listSegments(): unknown[]; collectGarbage(): { removed: string[] } };
    printJson(verb === 'ls' ? mod.listSegments() : mod.collectGarbage());
    return 0;
  },
};
