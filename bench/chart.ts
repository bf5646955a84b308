// A plain SVG bar chart of the benchmark medians (no plotting dependency): one bar per series,
// grouped into panels by unit, with min-max whiskers.
import { formatFigure, summarize, type Series } from './stats.js';

const WIDTH = 900;
const BAR = 22;
const GAP = 8;
const LABEL = 380;

export function renderChart(
  title: string,
  panels: { heading: string; series: Series[] }[],
): string {
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="10" y="24" font-size="18" font-weight="bold">${escape(title)}</text>`);
  for (const panel of panels) {
    y += 16;
    parts.push(
      `<text x="10" y="${y}" font-size="14" font-weight="bold">${escape(panel.heading)}</text>`,
    );
    y += 10;
    const max = Math.max(
      ...panel.series.map((s) => summarize(s.values).max).filter(Number.isFinite),
      1e-9,
    );
    const scale = (WIDTH - LABEL - 120) / max;
    for (const s of panel.series) {
      const { min, median, max: hi } = summarize(s.values);
      const w = Number.isFinite(median) ? median * scale : 0;
      parts.push(`<text x="10" y="${y + BAR * 0.7}" font-size="12">${escape(s.name)}</text>`);
      parts.push(
        `<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="#4a7fb5"/>`,
      );
      if (Number.isFinite(min) && Number.isFinite(hi)) {
        const cy = y + BAR / 2;
        parts.push(
          `<line x1="${LABEL + min * scale}" x2="${LABEL + hi * scale}" y1="${cy}" y2="${cy}" stroke="#222"/>`,
        );
      }
      parts.push(
        `<text x="${LABEL + w + 6}" y="${y + BAR * 0.7}" font-size="12">${Number.isFinite(median) ? formatFigure(median, s.unit) : '-'} ${s.unit}</text>`,
      );
      y += BAR + GAP;
    }
  }
  const height = y + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
