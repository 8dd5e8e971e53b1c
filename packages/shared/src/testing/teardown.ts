/**
 * Empties `stops`, running them last-registered first, so what started last stops first; every one runs even
 * if an earlier one fails, and the failures are thrown together at the end.
 */
export async function stopNewestFirst(stops: Array<() => Promise<unknown>>): Promise<void> {
  const failures: unknown[] = [];
  for (const stop of stops.splice(0).reverse()) {
    try {
      await stop();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} teardown steps failed`);
}

/** `value` once a test file's setup has made it; otherwise an error saying why `what` of `stack` is missing. */
export function startedOrThrow<T>(value: T | undefined, what: string, stack: string): T {
  if (value === undefined) throw new Error(`${what} of ${stack} is not there: read before its tests ran, set up without it, or its setup failed`);
  return value;
}
