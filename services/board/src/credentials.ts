import { createHash, timingSafeEqual } from "node:crypto";

export interface Credentials {
  user: string;
  password: string;
}

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * A check of basic-auth credentials that takes the same time whatever is wrong with them: digests have a
 * fixed length, so neither the length nor a matching prefix of the real ones leaks through response timing.
 */
export function credentialsChecker(expected: Credentials): (given: Credentials) => boolean {
  const user = digest(expected.user);
  const password = digest(expected.password);
  return (given) => {
    const userMatches = timingSafeEqual(digest(given.user), user);
    const passwordMatches = timingSafeEqual(digest(given.password), password);
    return userMatches && passwordMatches;
  };
}
