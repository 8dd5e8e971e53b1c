const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

export const formatUsd = (value: number | null) => (value === null ? "—" : usd.format(value));
export const formatPl = (value: number) => `${value >= 0 ? "+" : "−"}${usd.format(Math.abs(value))}`;
/** UTC, to the second: every service logs UTC, so the pages match the logs. */
export const formatTime = (iso: string | null) => (iso === null ? "—" : `${iso.slice(0, 19).replace("T", " ")}Z`);

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
