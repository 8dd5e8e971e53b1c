/**
 * The base of an error that is told apart by its class alone: an Error whose `name` is the class's own, so logs and
 * `instanceof` both say which failure it is. `class XError extends namedError("XError") {}` declares one in a line.
 */
export function namedError(name: string) {
  return class extends Error {
    override name = name;
  };
}
