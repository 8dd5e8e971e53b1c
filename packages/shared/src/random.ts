/**
 * Seeded pseudo-randomness, the same on every run, machine and Node version (only integer maths and IEEE-754
 * operations V8 computes identically): the simulator's price paths and fills, and the tests' and benches'
 * replayable orders and states.
 */

/** 32-bit FNV-1a hash of a string: turns text (a seed and what it is for) into an independent stream's seed. */
export function hashSeed(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A uniform generator on [0, 1) from a 32-bit seed: mulberry32, small, fast and good enough for simulations. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
