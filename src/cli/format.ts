// Numbers in the words and units the original tool printed ("991.82KB", "276.35KB/s").
import type { MappedEndpoint, Role } from '../peer.js';

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value}B` : `${value.toFixed(2)}${UNITS[unit]}`;
}

export function formatSpeed(bytes: number, ms: number): string {
  if (ms <= 0) return '-';
  return `${formatBytes(Math.round((bytes * 1000) / ms))}/s`;
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** --json: the port each peer's router mapped for this connection (null: none), by role. */
export function portMappingJson(
  mapping: Partial<Record<Role, MappedEndpoint>> | undefined,
): Record<Role, MappedEndpoint | null> {
  return { client: mapping?.client ?? null, server: mapping?.server ?? null };
}
