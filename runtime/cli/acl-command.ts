// `qcop acl check USER ACTION CHANNEL`: what the access policy of aclDir answers for a user (SPEC §9, docs/ACL.md), without a broker.
import { Accounts, type AccountFiles } from '../broker/acl/accounts.js';
import { ACL_ACTIONS, loadPolicy, type AclAction } from '../broker/acl/policy.js';
import { channelProblem, isPattern } from '../protocol/names.js';
import { printJson } from './connect-flags.js';
import { UsageError, stringFlag, type Command } from './table.js';

/** The board's policy folder when neither --acl-dir nor $QCOP_ACL_DIR says otherwise (SPEC §9). */
export const DEFAULT_ACL_DIR = '/etc/qcop/acl.d';

/** The user the broker runs as under systemd (SPEC §6), taken as the broker's user when --broker-user is not given and it exists. */
const SYSTEM_BROKER_USER = 'qcop';

function isAction(a: string): a is AclAction {
  return (ACL_ACTIONS as readonly string[]).includes(a);
}

/**
 * The `acl` command, resolving users through `files` (the system's /etc/passwd and /etc/group
 * by default; tests give temporary ones). Prints `{"allowed":true|false,"rule":"FILE:INDEX"|null}`;
 * exit 0 when allowed, 1 when not, 2 for a usage error (EINVAL: bad action, channel or user, or a
 * policy file that does not load).
 */
export function aclCommand(files: AccountFiles = {}): Command {
  return {
    name: 'acl',
    summary: 'Access policy: `check USER ACTION CHANNEL` prints {"allowed","rule"}; exit 0 if allowed, 1 if not.',
    usage: 'qcop acl check USER ACTION CHANNEL [--acl-dir DIR] [--broker-user USER]',
    flags: {
      'acl-dir': { type: 'string', description: `policy folder (default: $QCOP_ACL_DIR, then ${DEFAULT_ACL_DIR})` },
      'broker-user': { type: 'string', description: `the broker's user, allowed everything like root (default: ${SYSTEM_BROKER_USER} when that user exists)` },
      help: { type: 'boolean', description: 'show this help' },
    },
    positionals: { min: 4, max: 4 },
    async run(args) {
      const [verb, user, action, channel] = args.positionals as [string, string, string, string];
      if (verb !== 'check') throw new UsageError(`unknown acl command '${verb}' (check)`);
      if (!isAction(action)) throw new UsageError(`unknown action '${action}' (${ACL_ACTIONS.join(', ')})`);
      const problem = channelProblem(channel);
      if (problem !== null) throw new UsageError(problem);
      if (action === 'send' && isPattern(channel)) throw new UsageError(`'${channel}' is a pattern: a message is sent to a concrete channel`);
      const accounts = new Accounts(files);
      const who = accounts.identityOf(user);
      const brokerFlag = stringFlag(args, 'broker-user');
      const brokerUid = brokerFlag !== undefined ? accounts.resolveUser(brokerFlag) : accounts.userId(SYSTEM_BROKER_USER) ?? -1;
      const dir = stringFlag(args, 'acl-dir') ?? (process.env.QCOP_ACL_DIR || DEFAULT_ACL_DIR);
      const policy = loadPolicy(dir, { ...files, brokerUid, cacheLimit: 0 });
      const d = policy.allowed(who, action, channel);
      printJson({ allowed: d.allowed, rule: d.rule });
      return d.allowed ? 0 : 1;
    },
  };
}

/** `qcop acl`, over the system's account files. */
export const acl: Command = aclCommand();
