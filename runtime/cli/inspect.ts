// The CLI's inspection commands: registered, watch, stats.
import { connectFromFlags, printJson } from './connect-flags.js';
import { channelArg } from './messaging.js';
import { CLIENT_FLAGS, untilSignal, type Command } from './table.js';

export const registered: Command = {
  name: 'registered',
  summary: 'Print true or false: would anyone receive a message on CHANNEL? Exit 0 if so, 1 if not.',
  usage: 'qcop registered CHANNEL',
  flags: { ...CLIENT_FLAGS },
  positionals: { min: 1, max: 1 },
  async run(args) {
    const channel = channelArg(args.positionals[0]!, true);
    const client = await connectFromFlags(args);
    try {
      const yes = await client.isRegistered(channel);
      printJson(yes);
      return yes ? 0 : 1;
    } finally {
      await client.close();
    }
  },
};

export const watch: Command = {
  name: 'watch',
  summary: 'Print registration events of listener names matching PATTERN as JSON lines, the current state first.',
  usage: 'qcop watch PATTERN',
  flags: { ...CLIENT_FLAGS },
  positionals: { min: 1, max: 1 },
  async run(args) {
    const name = channelArg(args.positionals[0]!, false);
    const client = await connectFromFlags(args, true);
    const signal = untilSignal();
    try {
      const w = client.watch(name, (ev) => printJson(ev));
      await w.ready;
      await signal.promise;
      return 0;
    } finally {
      signal.dispose();
      await client.close();
    }
  },
};

export const stats: Command = {
  name: 'stats',
  summary: "Print the broker's figures as JSON: clients, channels, routed, dropped, queues.",
  usage: 'qcop stats',
  flags: { ...CLIENT_FLAGS },
  positionals: { min: 0, max: 0 },
  async run(args) {
    const client = await connectFromFlags(args);
    try {
      printJson(await client.stats());
      return 0;
    } finally {
      await client.close();
    }
  },
};
