/**
 * bcrypt ($2b$) for the local registry's htpasswd file: docker-registry's htpasswd auth accepts only bcrypt
 * entries, and the demo must not need a native module or the apache2-utils `htpasswd` tool. Devkit only
 * (never used to store re-bot's own secrets). Blowfish's initial state is the fractional part of pi,
 * computed here once with BigInt (Machin's formula) instead of a 4 KB table.
 */
import { randomBytes } from 'node:crypto';

const WORDS = 18 + 4 * 256;
let initial: Uint32Array | undefined;

function piWords(): Uint32Array {
  if (initial) return initial;
  const bits = BigInt(WORDS * 32 + 64);
  const one = 1n << bits;
  const atanInv = (x: bigint) => {
    let sum = 0n;
    let term = one / x;
    const x2 = x * x;
    for (let k = 0n; term !== 0n; k++) {
      sum += (k % 2n === 0n ? 1n : -1n) * (term / (2n * k + 1n));
      term /= x2;
    }
    return sum;
  };
  const pi = 16n * atanInv(5n) - 4n * atanInv(239n);
  const frac = (pi - 3n * one) >> 64n; // WORDS*32 bits after the point (the last guard bits dropped)
  const out = new Uint32Array(WORDS);
  for (let i = 0; i < WORDS; i++) out[i] = Number((frac >> BigInt((WORDS - 1 - i) * 32)) & 0xffffffffn);
  initial = out;
  return out;
}

class Blowfish {
  p: Uint32Array;
  s: Uint32Array;
  constructor() {
    const w = piWords();
    this.p = w.slice(0, 18);
    this.s = w.slice(18);
  }
  private f(x: number): number {
    const s = this.s;
    return ((((s[x >>> 24]! + s[256 + ((x >>> 16) & 0xff)]!) | 0) ^ s[512 + ((x >>> 8) & 0xff)]!) + s[768 + (x & 0xff)]!) | 0;
  }
  encrypt(lr: Uint32Array, off: number): void {
    let l = lr[off]!;
    let r = lr[off + 1]!;
    const p = this.p;
    l ^= p[0]!;
    for (let i = 1; i <= 16; i += 2) {
      r ^= this.f(l) ^ p[i]!;
      l ^= this.f(r) ^ p[i + 1]!;
    }
    r ^= p[17]!;
    lr[off] = r >>> 0;
    lr[off + 1] = l >>> 0;
  }
  private static word(data: Uint8Array, pos: { i: number }): number {
    let w = 0;
    for (let k = 0; k < 4; k++) {
      w = (w << 8) | data[pos.i]!;
      pos.i = (pos.i + 1) % data.length;
    }
    return w >>> 0;
  }
  /** ExpandKey(state, salt, key); with `salt` undefined, the salt-less expansion */
  expand(key: Uint8Array, salt?: Uint8Array): void {
    const kp = { i: 0 };
    for (let i = 0; i < 18; i++) this.p[i] = (this.p[i]! ^ Blowfish.word(key, kp)) >>> 0;
    const lr = new Uint32Array(2);
    const sp = { i: 0 };
    const fill = (arr: Uint32Array, n: number) => {
      for (let i = 0; i < n; i += 2) {
        if (salt) {
          lr[0] ^= Blowfish.word(salt, sp);
          lr[1] ^= Blowfish.word(salt, sp);
        }
        this.encrypt(lr, 0);
        arr[i] = lr[0]!;
        arr[i + 1] = lr[1]!;
      }
    };
    fill(this.p, 18);
    fill(this.s, 1024);
  }
}

const ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function encode(bytes: Uint8Array, chars: number): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (6 - bits)) & 63];
  return out.slice(0, chars);
}

function decode(text: string, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`bcrypt: bad salt character ${ch}`);
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n < bytes) out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** `$2b$<cost>$<22-char salt><31-char hash>` of `password`; `salt` (22 chars) for known-answer tests. */
export function bcryptHash(password: string, cost = 10, salt?: string): string {
  if (cost < 4 || cost > 31) throw new Error('bcrypt: cost must be 4..31');
  const saltText = salt ?? encode(randomBytes(16), 22);
  const saltBytes = decode(saltText, 16);
  const key = new Uint8Array([...Buffer.from(password, 'utf8').subarray(0, 72), 0]).subarray(0, 72);
  const bf = new Blowfish();
  bf.expand(key, saltBytes);
  for (let i = 0; i < 2 ** cost; i++) {
    bf.expand(key);
    bf.expand(saltBytes);
  }
  const text = Buffer.from('OrpheanBeholderScryDoubt', 'latin1');
  const ctext = new Uint32Array(6);
  for (let i = 0; i < 6; i++) ctext[i] = text.readUInt32BE(i * 4);
  for (let round = 0; round < 64; round++) for (let j = 0; j < 6; j += 2) bf.encrypt(ctext, j);
  const out = Buffer.alloc(24);
  for (let i = 0; i < 6; i++) out.writeUInt32BE(ctext[i]!, i * 4);
  return `$2b$${String(cost).padStart(2, '0')}$${saltText.slice(0, 22)}${encode(out.subarray(0, 23), 31)}`;
}
