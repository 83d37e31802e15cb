// Playing one fuzz session against a live broker and judging what it did: shared by test/fuzz/fuzz.test.ts (an
// in-process broker) and reliability/scenarios/fuzz.ts (a qcopd process, a million frames).
import { SYNC_ID, expectation, session, type Expectation, type Session } from './gen.js';
import { K, MAX_BROKER_KIND, RawConn, Rng } from './raw.js';

/** The PRNG of connection `index` of a run with `seed`: a session is reproducible from both. */
export function sessionRng(seed: number, index: number): Rng {
  return new Rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function describe(f: { kind: number; id: number; message: string } | undefined): string {
  return f ? `kind 0x${f.kind.toString(16)} id ${f.id} ${f.message}` : 'none';
}

/**
 * What the broker did with a session written on `raw`, against what it must do (`expected`): the final request
 * answered, a broken stream closed after an error frame; then our end() must close it. Problems say why not.
 */
export async function judge(raw: RawConn, expected: Expectation, where: string, answerMs: number): Promise<{ outcome: string; problems: string[]; hung: boolean }> {
  const problems: string[] = [];
  let outcome: string;
  let hung = false;
  if (expected === 'sync') {
    const ok = await raw.until(() => raw.closed || raw.frames.some((f) => f.kind === K.Result && f.id === SYNC_ID), answerMs);
    const answered = raw.frames.some((f) => f.kind === K.Result && f.id === SYNC_ID);
    outcome = answered ? 'answered' : raw.closed ? 'closed' : 'silent';
    if (!ok || !answered) {
      hung = !ok;
      problems.push(`${where}: the final request got no answer (${outcome}; last frame ${describe(raw.frames.at(-1))})`);
    }
  } else if (expected === 'fatal') {
    await raw.until(() => raw.closed, answerMs);
    const last = raw.frames.at(-1);
    outcome = raw.closed ? 'closed after error' : 'left open';
    if (!raw.closed) {
      hung = true;
      problems.push(`${where}: a broken stream was not closed`);
    } else if (!last || last.kind !== K.Error || last.id !== 0 || !['EPROTO', 'EMSGSIZE', 'ENOTSUP'].includes(last.message)) {
      problems.push(`${where}: closed without a stream error frame last (last frame ${describe(last)})`);
    }
  } else {
    outcome = expected;
  }
  if (raw.malformed) problems.push(`${where}: the broker sent a malformed stream: ${raw.malformed}`);
  for (const f of raw.frames) {
    if (f.kind < 0x41 || f.kind > MAX_BROKER_KIND) problems.push(`${where}: the broker sent unknown kind 0x${f.kind.toString(16)}`);
  }
  raw.socket.end();
  const closed = await raw.until(() => raw.closed, 2000);
  if (!closed) {
    hung = true;
    problems.push(`${where}: not closed by the broker after our end()`);
    raw.socket.destroy();
  }
  return { outcome, problems, hung };
}

/** One session played from start to end on a new connection to `socketPath`. */
export interface Played { session: Session; expected: Expectation; outcome: string; problems: string[]; hung: boolean }

/** Generates session `index` of `seed` (about `budget` frames), writes it to the broker on `socketPath` and judges it. */
export async function playSession(socketPath: string, seed: number, index: number, budget: number, maxFrameBytes: number, answerMs: number): Promise<Played> {
  const rng = sessionRng(seed, index);
  const s = session(rng, index, budget);
  return playBytes(socketPath, s, rng, maxFrameBytes, answerMs, `connection ${index} (${s.label}, seed ${seed})`);
}

/** Writes a session's bytes (whole chunks of random size, or dripped) and judges what the broker did. */
export async function playBytes(socketPath: string, s: Session, rng: Rng, maxFrameBytes: number, answerMs: number, where: string): Promise<Played> {
  const expected = expectation(s.bytes, maxFrameBytes);
  const raw = await RawConn.open(socketPath);
  const chunk = s.drip ? () => 1 + rng.int(8) : () => 1 + rng.int(s.bytes.length);
  await raw.write(s.bytes, chunk, s.drip);
  const j = await judge(raw, expected, `${where}, expected ${expected}`, answerMs);
  return { session: s, expected, ...j };
}
