// The CLI's messaging commands: send, listen, call.
import type { ReceivedMessage } from '../client/message.js';
import { QcopError } from '../protocol/errors.js';
import { channelProblem, isPattern, messageProblem } from '../protocol/names.js';
import { connectFromFlags, printJson } from './connect-flags.js';
import { parseDataArgument, toJsonData } from './json-data.js';
import { CLIENT_FLAGS, UsageError, numberFlag, untilSignal, type Command, type ParsedArgs } from './table.js';

/** Validates a concrete channel argument: exit 2 with EINVAL when bad (SPEC §4). */
export function channelArg(name: string, concrete: boolean): string {
  const problem = channelProblem(name);
  if (problem) throw new UsageError(problem);
  if (concrete && isPattern(name)) throw new UsageError(`'${name}' is a pattern; this command needs a concrete channel`);
  return name;
}

function messageArg(name: string): string {
  const problem = messageProblem(name);
  if (problem) throw new UsageError(problem);
  return name;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function dataArg(args: ParsedArgs, index: number): Promise<unknown> {
  const text = args.positionals[index];
  if (args.flags.raw) {
    if (text !== undefined) throw new UsageError('give DATA or --raw, not both');
    return readStdin();
  }
  return text === undefined ? undefined : parseDataArgument(text);
}

/** The JSON line printed for a received message (SPEC §4): no `data` key when there is none. */
export function messageLine(msg: ReceivedMessage): Record<string, unknown> {
  const line: Record<string, unknown> = { channel: msg.channel, message: msg.message };
  // A private copy, checked after it was made: a producer that shrinks its pool under the message
  // makes this throw EBADSLOT (counted as lost) instead of printing zeros (docs/SHM.md §10).
  if (msg.bytes.length > 0) line.data = toJsonData(msg.copyData());
  // SPEC §10: marks, only when set.
  if (msg.retained) line.retained = true;
  if (msg.redelivered) line.redelivered = true;
  return line;
}

export const send: Command = {
  name: 'send',
  summary: 'Send MESSAGE on CHANNEL with optional DATA (JSON text) and print {"receivers":N}.',
  usage: 'qcop send CHANNEL MESSAGE [DATA] [--raw] [--require-listener] [--retain]',
  flags: {
    ...CLIENT_FLAGS,
    raw: { type: 'boolean', description: 'read the data as raw bytes from stdin' },
    retain: { type: 'boolean', description: "keep it as the channel's retained value; without DATA, clear that value (SPEC §10)" },
    'require-listener': { type: 'boolean', description: 'exit 1 with ENOLISTENER when nobody received it' },
  },
  positionals: { min: 2, max: 3 },
  async run(args) {
    const channel = channelArg(args.positionals[0]!, true);
    const message = messageArg(args.positionals[1]!);
    const data = await dataArg(args, 2);
    const client = await connectFromFlags(args);
    try {
      const { receivers, queued } = await client.publish(channel, message, data, { retain: args.flags.retain === true });
      // SPEC §10: a stored message nobody received yet waits for a listener.
      printJson(queued && receivers === 0 ? { receivers, queued } : { receivers });
      if (receivers === 0 && args.flags['require-listener']) {
        throw new QcopError('ENOLISTENER', `nobody listens on ${channel}`);
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};

export const listen: Command = {
  name: 'listen',
  summary: 'Print one JSON line {"channel","message","data"} per message on the channels or patterns.',
  usage: 'qcop listen PATTERN... [--count N] [--timeout S]',
  flags: {
    ...CLIENT_FLAGS,
    count: { type: 'string', description: 'exit 0 after N messages' },
    timeout: { type: 'string', description: 'stop after S seconds: exit 0, or 1 (ETIMEDOUT) if --count was not reached' },
  },
  positionals: { min: 1, max: Infinity },
  async run(args) {
    const names = args.positionals.map((p) => channelArg(p, false));
    const count = numberFlag(args, 'count', { integer: true, min: 1 });
    const timeout = numberFlag(args, 'timeout', { min: 0 });
    const client = await connectFromFlags(args, true);
    const signal = untilSignal();
    let seen = 0;
    let last: ReceivedMessage | null = null;
    let finish!: (code: number) => void;
    const done = new Promise<number>((r) => (finish = r));
    const onMessage = (msg: ReceivedMessage): void | Promise<never> => {
      if (msg === last) return; // one line per message, even when several patterns match
      // A message of a queued channel past --count is not acknowledged: the broker keeps it for the next listener (SPEC §10).
      if (count !== undefined && seen >= count) return new Promise<never>(() => {});
      last = msg;
      // This command cannot answer: a call must not wait for it.
      msg.decline?.();
      printJson(messageLine(msg));
      seen++;
      if (count !== undefined && seen >= count) finish(0);
    };
    // Stdout carries only messages: losses (a stuck receiver, SPEC §2) are told on stderr.
    client.on('lost', (info: { count: number }) => process.stderr.write(`qcop listen: ${info.count} message(s) lost: the broker dropped them while this listener was not reading\n`));
    const handles = names.map((n) => client.listen(n, onMessage));
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.all(handles.map((h) => h.ready));
      if (timeout !== undefined) {
        timer = setTimeout(() => finish(count === undefined ? 0 : -1), timeout * 1000);
      }
      const code = await Promise.race([done, signal.promise.then(() => 0)]);
      if (code === -1) throw new QcopError('ETIMEDOUT', `${seen} of ${count} messages before the timeout of ${timeout} s`);
      return code;
    } finally {
      clearTimeout(timer);
      signal.dispose();
      await client.close();
    }
  },
};

export const call: Command = {
  name: 'call',
  summary: 'Call MESSAGE on CHANNEL and print the first reply as JSON (null when the reply has no value).',
  usage: 'qcop call CHANNEL MESSAGE [DATA] [--timeout S] [--raw]',
  flags: {
    ...CLIENT_FLAGS,
    timeout: { type: 'string', description: 'seconds to wait for a reply (default 5)' },
    raw: { type: 'boolean', description: 'read the data as raw bytes from stdin' },
  },
  positionals: { min: 2, max: 3 },
  async run(args) {
    const channel = channelArg(args.positionals[0]!, true);
    const message = messageArg(args.positionals[1]!);
    const timeout = numberFlag(args, 'timeout', { min: 0.001 });
    const data = await dataArg(args, 2);
    const client = await connectFromFlags(args);
    try {
      const reply = await client.call(channel, message, data, timeout === undefined ? {} : { timeoutMs: timeout * 1000 });
      printJson(reply === undefined ? null : toJsonData(reply));
      return 0;
    } finally {
      await client.close();
    }
  },
};
