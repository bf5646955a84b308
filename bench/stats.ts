// Figures for the benchmark table: min / median / max over runs, throughput and ratios.

export interface Series {
  name: string;
  unit: Unit;
  values: number[];
}

/** Throughput, seconds, peak memory, CPU seconds (user + system) per GiB or per 1,000 files, files/s. */
export type Unit = 'MiB/s' | 's' | 'MB' | 'CPU s/GiB' | 'CPU s/1,000 files' | 'files/s' | 'count';

export interface Summary {
  min: number;
  median: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { min: sorted[0] as number, median, max: sorted[sorted.length - 1] as number };
}

export function mibPerSecond(bytes: number, ms: number): number {
  return ms > 0 ? bytes / 1024 / 1024 / (ms / 1000) : NaN;
}

export function formatFigure(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return '-';
  if (unit === 's') return value.toFixed(3);
  if (unit === 'CPU s/GiB' || unit === 'CPU s/1,000 files') return value.toFixed(2);
  if (unit === 'count') return value.toFixed(0);
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export const NAME_WIDTH = 52;
export const FIGURE_WIDTH = 30;

/** One table row: name and min / median / max; then one line per baseline with the medians' ratio. */
export function row(series: Series, baselines: Series[] = []): string {
  const s = summarize(series.values);
  const f = (v: number): string => formatFigure(v, series.unit);
  const lines = [
    `${series.name.padEnd(NAME_WIDTH)} ${`${f(s.min)} / ${f(s.median)} / ${f(s.max)} ${series.unit}`.padEnd(FIGURE_WIDTH)}`.trimEnd(),
  ];
  for (const baseline of baselines) {
    lines.push(`${''.padEnd(NAME_WIDTH)} ${ratio(series, baseline)}`);
  }
  return lines.join('\n');
}

/**
 * "0.62x the throughput of B" or "2.10x the time of B", from the medians. Throughput and rate ratios
 * above 1 and time, memory and CPU ratios below 1 favour the series.
 */
export function ratio(series: Series, baseline: Series): string {
  const a = summarize(series.values).median;
  const b = summarize(baseline.values).median;
  const r = a / b;
  const what: Record<Unit, string> = {
    s: 'the time of',
    MB: 'the memory of',
    'MiB/s': 'the throughput of',
    'CPU s/GiB': 'the CPU of',
    'CPU s/1,000 files': 'the CPU of',
    'files/s': 'the rate of',
    count: 'the count of',
  };
  return `${Number.isFinite(r) ? r.toFixed(2) : '-'}x ${what[series.unit]} ${baseline.name}`;
}
