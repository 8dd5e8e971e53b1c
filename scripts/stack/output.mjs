const COLORS = [36, 33, 32, 35, 34, 96, 93, 92, 95];

/**
 * Prefixes each line with the name of the service that wrote it, padded so the lines align (and coloured
 * on a terminal), the way `docker compose up` shows its services' output.
 */
export function prefixedOutput(names, stream = process.stdout) {
  const width = Math.max(...names.map((name) => name.length));
  const colour = new Map(names.map((name, index) => [name, COLORS[index % COLORS.length]]));
  return (name, line) => {
    const label = `${name.padEnd(width)} |`;
    stream.write(`${stream.isTTY ? `\x1b[${colour.get(name) ?? 0}m${label}\x1b[0m` : label} ${line}\n`);
  };
}
