/**
 * Seeded pseudo-randomness for the price model. Everything here is a pure function of its seed, so the
 * same seed gives the same price paths on every run, machine and Node version (only integer maths and
 * IEEE-754 operations that V8 computes identically).
 */

/** 32-bit FNV-1a hash of a string: turns a (seed, symbol) pair into an independent stream seed. */
export function hashSeed(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A uniform generator on [0, 1): mulberry32, small, fast and good enough for simulated prices. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A standard normal draw (Box-Muller); `1 - next()` keeps the logarithm's argument above zero. */
  normal(): number {
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    return radius * Math.cos(2 * Math.PI * this.next());
  }
}

/** A UUID-shaped id that is the same for the same text in every run (asset and account ids are stable). */
export function stableUuid(text: string): string {
  const hex = [0, 1, 2, 3].map((part) => hashSeed(`${part}:${text}`).toString(16).padStart(8, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
