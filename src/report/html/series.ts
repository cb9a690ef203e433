/**
 * The HTML report of a balancedness series (a server log imported with `import log`): the summary `check` uses
 * and balancedness over the logged steps as an inline SVG line chart. Self-contained like the routing report.
 */
import { fmt, fmtCount } from '../../core/number-format.js';
import { THEME } from '../colour.js';
import { esc } from './escape.js';
import { htmlPage, type PageOptions } from './page.js';

export interface SeriesReportData {
  subject: string;
  producer: 'sglang' | 'vllm';
  steps: Float64Array;
  /** Per step; NaN where the line had none. */
  lines: { label: string; values: Float64Array; colour: string }[];
  summary: { steps: number; mean: number; min: number; last: number; last1000: number | null };
}

/** Points drawn at most per line: longer series keep each bucket's min and max, so dips stay visible. */
const MAX_POINTS = 1200;

function path(steps: Float64Array, v: Float64Array, x: (s: number) => number, y: (b: number) => number): string {
  const n = v.length;
  const per = Math.max(1, Math.ceil((2 * n) / MAX_POINTS));
  const pts: string[] = [];
  for (let i = 0; i < n; i += per) {
    let lo = i;
    let hi = i;
    for (let j = i; j < Math.min(n, i + per); j++) {
      if (!Number.isFinite(v[j]!)) continue;
      if (!Number.isFinite(v[lo]!) || v[j]! < v[lo]!) lo = j;
      if (!Number.isFinite(v[hi]!) || v[j]! > v[hi]!) hi = j;
    }
    for (const k of lo <= hi ? [lo, hi] : [hi, lo])
      if (Number.isFinite(v[k]!)) pts.push(`${x(steps[k]!).toFixed(1)},${y(v[k]!).toFixed(1)}`);
  }
  return pts.length ? `M${pts.join('L')}` : '';
}

function chart(d: SeriesReportData): string {
  const W = 960;
  const H = 280;
  const L = 48;
  const R = 16;
  const T = 16;
  const B = 36;
  const n = d.steps.length;
  const s0 = n ? d.steps[0]! : 0;
  const s1 = n ? d.steps[n - 1]! : 1;
  const x = (s: number) => L + ((s - s0) / Math.max(s1 - s0, 1)) * (W - L - R);
  const y = (b: number) => T + (1 - Math.min(Math.max(b, 0), 1)) * (H - T - B);
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (t) =>
        `<line x1="${L}" x2="${W - R}" y1="${y(t)}" y2="${y(t)}" stroke="${THEME.rule}"/><text x="${L - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`,
    )
    .join('');
  const lines = d.lines
    .map((l) => `<path d="${path(d.steps, l.values, x, y)}" fill="none" stroke="${l.colour}" stroke-width="1.5"/>`)
    .join('');
  const legend = d.lines
    .map(
      (l, i) =>
        `<rect x="${L + i * 220}" y="${H - 14}" width="12" height="4" fill="${l.colour}"/><text x="${L + i * 220 + 16}" y="${H - 9}">${esc(l.label)}</text>`,
    )
    .join('');
  return `<svg role="img" aria-label="balancedness over the logged steps" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${ticks}${lines}
<text x="${L}" y="${H - 22}">step ${esc(fmt(s0, 0))}</text><text x="${W - R}" y="${H - 22}" text-anchor="end">step ${esc(fmt(s1, 0))}</text>${legend}</svg>`;
}

export function renderSeriesHtml(d: SeriesReportData, opts: PageOptions): string {
  const who = d.producer === 'sglang' ? 'SGLang' : 'vLLM';
  const convention =
    d.producer === 'sglang'
      ? 'per forward pass, the mean over layers of (mean + 1e-5) / (max + 1e-5) of the GPUs’ loads'
      : 'per EPLB step, Σ over layers of the mean rank load ÷ Σ of the busiest rank’s load';
  const s = d.summary;
  const rows: [string, string][] = [
    ['steps', fmtCount(s.steps)],
    ['mean balancedness', fmt(s.mean, 3)],
    ['lowest', fmt(s.min, 3)],
    ['last', fmt(s.last, 3)],
    ...(s.last1000 !== null ? ([['last 1000-pass average (SGLang)', fmt(s.last1000, 3)]] as [string, string][]) : []),
  ];
  const body = `<header><h1>EPLB balancedness report</h1><p class="subject">${esc(d.subject)}</p>
<dl class="facts"><dt>source</dt><dd>${esc(who)} server log (balancedness lines)</dd></dl></header>
<h2 id="summary">Summary</h2>
<p class="note">Balancedness as ${esc(who)} logs it: ${esc(convention)}. 1 = every GPU equally loaded; 1/GPUs = one GPU does all the work.
The log holds no per-expert loads: for those, record counts (<code>moescope watch --record</code>) or routing.</p>
<table><tbody>${rows.map(([k, v]) => `<tr><td class="l">${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</tbody></table>
<h2 id="over-time">Balancedness over the logged steps</h2>
${chart(d)}`;
  return htmlPage(d.subject, opts, body, 'Balancedness: docs/placement.md.');
}
