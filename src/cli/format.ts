// Numbers in words a user reads at a glance: sizes with binary prefixes that say so ("991.82 KiB",
// "276.35 KiB/s", "1.00 GiB"), durations ("0.34 s", "ETA 1m05s") and dates. Every size the CLI prints
// goes through formatBytes, so the units are the same everywhere.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 7 B, 1023 B, 1.00 KiB, 991.82 KiB, 200.00 MiB, 1.00 GiB. */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  // 1023.996 KiB would round to "1024.00 KiB": step up before rounding does that.
  while (value >= 1023.995 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(2)} ${UNITS[unit]}`;
}

/** Bytes per second over ms, or "-" before any time has passed. */
export function formatSpeed(bytes: number, ms: number): string {
  if (ms <= 0) return '-';
  return `${formatBytes(Math.round((bytes * 1000) / ms))}/s`;
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A time left, coarse enough to read while it changes: 5s, 1m05s, 2h03m. */
export function formatEta(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.floor(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
