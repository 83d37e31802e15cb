// The middle of a pattern, `*S1*S2*...*`, as a bit-parallel NFA: one pass over the name (SPEC §8).
import { accepts, STAR, type CharSet } from './pattern-syntax.js';
import { work } from './work.js';

/**
 * `*S1*S2*...*` as a bit-parallel NFA (shift-and): bit k+1 of the state is "k tokens consumed",
 * a star's state loops on any character and is entered without one. Each character costs one
 * pass over ⌈(tokens + 1) / 32⌉ words, so the middle costs O(len(name) × len(pattern) / 32)
 * whatever its shape, where a search segment by segment costs O(len(name) × len(segment)).
 */
export class StarNfa {
  private readonly words: number;
  private readonly loop: Int32Array;
  private readonly eps: Int32Array;
  private readonly state: Int32Array;
  // Character masks (bit k+1: token k accepts the character), built on first use: ASCII in a
  // table, other characters in a small map that starts again when full.
  private readonly ascii: Int32Array;
  private readonly asciiKnown = new Uint8Array(128);
  private readonly other = new Map<number, Int32Array>();
  private readonly finalWord: number;
  private readonly finalBit: number;

  constructor(private readonly tokens: Int32Array, private readonly sets: CharSet[]) {
    const states = tokens.length + 1;
    const w = (this.words = (states + 31) >>> 5);
    this.loop = new Int32Array(w);
    this.eps = new Int32Array(w);
    this.state = new Int32Array(w);
    this.ascii = new Int32Array(128 * w);
    for (let k = 0; k < tokens.length; k++) {
      if (tokens[k] !== STAR) continue;
      this.eps[k >>> 5]! |= 1 << (k & 31);
      this.loop[(k + 1) >>> 5]! |= 1 << ((k + 1) & 31);
    }
    this.finalWord = tokens.length >>> 5;
    this.finalBit = 1 << (tokens.length & 31);
  }

  /** True when codes [from, to) hold the segments in order (the tokens start and end with a star). */
  matches(codes: Int32Array, from: number, to: number): boolean {
    return this.words === 1 ? this.matchesOneWord(codes, from, to) : this.matchesWords(codes, from, to);
  }

  /** Up to 31 tokens, the usual case: the state lives in one integer. */
  private matchesOneWord(codes: Int32Array, from: number, to: number): boolean {
    const loop = this.loop[0]!;
    const eps = this.eps[0]!;
    const final = this.finalBit;
    let v = 0b11; // state 0, and state 1 through the leading star
    let i = from;
    for (; i < to; i++) {
      const c = codes[i]!;
      let mask: number;
      if (c < 128) {
        if (this.asciiKnown[c] === 0) this.learn(c);
        mask = this.ascii[c]!;
      } else {
        mask = this.nonAscii(c)[0]!;
      }
      v = ((v << 1) & mask) | (v & loop);
      v |= (v & eps) << 1;
      // The last token is a star: once its state is reached it stays, whatever follows.
      if ((v & final) !== 0 || v === 0) break;
    }
    work.steps += i - from + 1;
    return (v & final) !== 0;
  }

  private matchesWords(codes: Int32Array, from: number, to: number): boolean {
    const w = this.words;
    const d = this.state;
    d.fill(0);
    d[0] = 0b11; // state 0, and state 1 through the leading star
    const loop = this.loop;
    const eps = this.eps;
    let steps = 0;
    for (let i = from; i < to; i++) {
      const c = codes[i]!;
      let masks: Int32Array;
      let at = 0;
      if (c < 128) {
        at = c * w;
        masks = this.ascii;
        if (this.asciiKnown[c] === 0) this.learn(c);
      } else {
        masks = this.nonAscii(c);
      }
      let carry = 0;
      let any = 0;
      for (let k = 0; k < w; k++) {
        const v = d[k]!;
        const next = (((v << 1) | carry) & masks[at + k]!) | (v & loop[k]!);
        carry = v >>> 31;
        d[k] = next;
      }
      carry = 0;
      for (let k = 0; k < w; k++) {
        const e = d[k]! & eps[k]!;
        const v = (d[k] = d[k]! | (e << 1) | carry);
        carry = e >>> 31;
        any |= v;
      }
      steps += w;
      if ((d[this.finalWord]! & this.finalBit) !== 0) break;
      if (any === 0) break;
    }
    work.steps += steps + 1;
    return (d[this.finalWord]! & this.finalBit) !== 0;
  }

  private learn(c: number): void {
    this.fill(c, this.ascii, c * this.words);
    this.asciiKnown[c] = 1;
    work.steps += this.tokens.length;
  }

  private nonAscii(c: number): Int32Array {
    let m = this.other.get(c);
    if (!m) {
      if (this.other.size >= 64) this.other.clear();
      m = new Int32Array(this.words);
      this.fill(c, m, 0);
      work.steps += this.tokens.length;
      this.other.set(c, m);
    }
    return m;
  }

  private fill(c: number, into: Int32Array, at: number): void {
    const tokens = this.tokens;
    for (let k = 0; k < tokens.length; k++) {
      const t = tokens[k]!;
      if (t !== STAR && accepts(t, c, this.sets)) into[at + ((k + 1) >>> 5)]! |= 1 << ((k + 1) & 31);
    }
  }
}
