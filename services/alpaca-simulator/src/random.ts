import { hashSeed, seededRandom } from "@savepoint/shared";

/**
 * Seeded pseudo-randomness for the price model (packages/shared random.ts). Everything here is a pure function
 * of its seed, so the same seed gives the same price paths on every run, machine and Node version.
 */

/** A uniform generator on [0, 1) (the shared mulberry32), with the normal draws the price model needs. */
export class SeededRandom {
  readonly next: () => number;

  constructor(seed: number) {
    this.next = seededRandom(seed);
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
