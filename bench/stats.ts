// Figures for the benchmark table: min / median / max over runs, throughput and ratios.

export interface Series {
  name: string;
  unit: 'MiB/s' | 's' | 'MB';
  values: number[];
}

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

export function formatFigure(value: number, unit: Series['unit']): string {
  if (!Number.isFinite(value)) return '-';
  if (unit === 's') return value.toFixed(3);
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
 * "0.62x the throughput of B" or "2.10x the time of B", from the medians. Throughput ratios above 1
 * and time ratios below 1 favour the series.
 */
export function ratio(series: Series, baseline: Series): string {
  const a = summarize(series.values).median;
  const b = summarize(baseline.values).median;
  const r = a / b;
  const what =
    series.unit === 's'
      ? 'the time of'
      : series.unit === 'MB'
        ? 'the memory of'
        : 'the throughput of';
  return `${Number.isFinite(r) ? r.toFixed(2) : '-'}x ${what} ${baseline.name}`;
}
