/**
 * Small-multiple bar charts: one SVG per layer, one bar per expert bin (height = share of the layer's
 * assignments), a dashed line at the balanced share, and dead bins marked below the axis.
 */
import { THEME } from '../colour.js';
import { esc } from './escape.js';

export interface BarsSpec {
  title: string;
  /** Bar heights (shares, 0…1). */
  values: number[];
  /** Tooltips, one per bar. */
  labels: string[];
  /** Bars drawn with a dead marker (no assignment). */
  dead: boolean[];
  /** Common y maximum so layers compare at a glance. */
  max: number;
  /** The balanced value (share of a bin when load is even). */
  balanced: number;
  format: (v: number) => string;
}

const W = 260;
const H = 84;
const PAD_L = 44;
const PAD_B = 10;

export function barsSvg(s: BarsSpec): string {
  const n = s.values.length;
  const plotW = W - PAD_L - 4;
  const plotH = H - PAD_B - 14;
  const bw = plotW / Math.max(1, n);
  const max = s.max > 0 ? s.max : 1;
  const y = (v: number) => 14 + plotH - (Math.min(v, max) / max) * plotH;
  const out: string[] = [
    `<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(s.title)}">`,
    `<text class="bars-title" x="${PAD_L}" y="10">${esc(s.title)}</text>`,
    `<text class="axis" x="${PAD_L - 4}" y="${y(max) + 4}" text-anchor="end">${esc(s.format(max))}</text>`,
    `<text class="axis" x="${PAD_L - 4}" y="${y(0)}" text-anchor="end">0</text>`,
  ];
  for (let i = 0; i < n; i++) {
    const v = s.values[i]!;
    const top = y(v);
    out.push(
      `<rect class="bar" x="${(PAD_L + i * bw).toFixed(2)}" y="${top.toFixed(2)}" width="${Math.max(0.5, bw - (bw > 3 ? 1 : 0)).toFixed(2)}" ` +
        `height="${(y(0) - top).toFixed(2)}" fill="${THEME.bar}"><title>${esc(s.labels[i]!)}</title></rect>`,
    );
    if (s.dead[i]) {
      out.push(
        `<rect class="dead" x="${(PAD_L + i * bw).toFixed(2)}" y="${y(0) + 2}" width="${Math.max(1, bw - 1).toFixed(2)}" height="4" fill="${THEME.alert}"><title>${esc(s.labels[i]!)}</title></rect>`,
      );
    }
  }
  const yb = y(s.balanced);
  out.push(
    `<line class="balanced" x1="${PAD_L}" x2="${W - 4}" y1="${yb}" y2="${yb}" stroke="${THEME.balanced}" stroke-width="1.5" stroke-dasharray="4 3"/>`,
  );
  out.push(`<line x1="${PAD_L}" x2="${W - 4}" y1="${y(0)}" y2="${y(0)}" stroke="${THEME.rule}"/>`);
  out.push('</svg>');
  return out.join('\n');
}
