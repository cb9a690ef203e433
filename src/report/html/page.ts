/**
 * The HTML report: one self-contained file — inline CSS and SVG, no scripts, no external resources (a
 * Content-Security-Policy forbids any load) — so it can be attached to a CI run or mailed and opened anywhere.
 */
import { describeSchema, expertsAt } from '../../core/batch.js';
import type { CollapseWarning, LayerMetrics } from '../../stats/index.js';
import type { ReportData, ShapeSummary } from '../collect.js';
import { THEME } from '../colour.js';
import { NO_VALUE, fmt, fmtCount } from '../../core/number-format.js';
import { barsSvg } from './bars.js';
import { binLabel, binValues, expertBins, expertBinsOf, type ExpertBin } from './bins.js';
import { METRIC_COLUMNS } from './conventions.js';
import { esc } from './escape.js';
import { heatmapSvg } from './heatmap.js';

export interface PageOptions {
  moescopeVersion: string;
  /** When the report was made (shown in the footer). */
  generatedAt: Date;
}

/** Domain heatmaps drawn at most (one per layer would make a 60-layer report tens of MB). */
const MAX_DOMAIN_MAPS = 8;

/** `k` indices spread evenly over 0 … n−1, first and last included (all of them when n ≤ k). */
function spreadPick(n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: k }, (_, i) => Math.round((i * (n - 1)) / (k - 1)));
}

const pct = (v: number) => `${(v * 100).toFixed(v >= 0.1 ? 1 : 2)}%`;

/**
 * Top of a colour scale: at least twice the balanced value, so balance sits mid-ramp (teal), idle cells go dark
 * and hot ones yellow — a near-balanced layer does not look alarming just because its cells are the maximum.
 */
function scaleMax(values: number[][], balanced: number): number {
  return Math.max(2 * balanced, ...values.flat(), 1e-12);
}

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: ${THEME.text}; margin: 0; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 36px 0 8px; border-bottom: 1px solid ${THEME.rule}; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 16px 0 4px; }
.subject { color: ${THEME.muted}; word-break: break-all; margin: 0 0 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { color: ${THEME.muted}; } dl.facts dd { margin: 0; }
nav { margin: 12px 0 0; } nav a { margin-right: 14px; }
p.note { color: ${THEME.muted}; max-width: 80ch; }
p.unfollowed { color: ${THEME.alert}; max-width: 80ch; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid ${THEME.rule}; text-align: right; vertical-align: top; }
th { font-weight: 600; } th small { display: block; font-weight: 400; color: ${THEME.muted}; }
td.l, th.l { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid ${THEME.text}; }
.table-wrap { overflow-x: auto; }
.grid { display: flex; flex-wrap: wrap; gap: 6px 18px; }
svg text { font: 11px system-ui, sans-serif; fill: ${THEME.text}; }
svg text.axis-title, svg text.legend-title, svg text.bars-title { font-weight: 600; }
ul.warnings li { margin: 2px 0; } .rule { font-family: ui-monospace, monospace; color: ${THEME.alert}; }
.ok { color: ${THEME.ok}; }
footer { margin-top: 40px; color: ${THEME.muted}; font-size: 12px; }
`;

function facts(d: ReportData): string {
  const rows: [string, string][] = [];
  if (d.model) rows.push(['model', d.model]);
  if (d.source) rows.push(['recorded by', d.source]);
  if (d.computeDevices.length) rows.push(['compute', d.computeDevices.join(', ')]);
  if (d.counts)
    rows.push([
      'steps',
      `${fmtCount(d.counts.steps)} — a count trace: load counts per step, no per-token data (tokens = assignments ÷ K)`,
    ]);
  rows.push(['tokens', fmtCount(d.tokens)]);
  rows.push(['routing', describeSchema(d.schema)]);
  rows.push(['MoE layers', d.schema.layers.join(', ')]);
  return `<dl class="facts">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
}

/** The warning about routers whose weights were not followed to the mixing (each named, with why), or ''. */
function unfollowedNote(d: ReportData): string {
  if (!d.unfollowed.length) return '';
  return `<p class="unfollowed"><b>Weights not followed to the mixing</b> in ${d.unfollowed
    .map((u) => `layer ${esc(d.layerLabels[u.layer]!)} (${esc(u.note)})`)
    .join(
      ', ',
    )}: the engine could not trace what these routers' experts are multiplied by. Their selection — every count in this report — is the model's; their recorded weights are not (NaN in the trace).</p>`;
}

/** Whether every expert of bin b is a zero-computation expert of layer r. */
function zeroBin(d: ReportData, r: number, b: ExpertBin): boolean {
  const z = d.zeroExperts[r];
  if (!z) return false;
  for (let e = b.first; e <= b.last; e++) if (!z.ids.includes(e)) return false;
  return true;
}

/** The note on zero-computation experts (LongCat-Flash), or '' when the trace has none. */
function zeroNote(d: ReportData): string {
  const rows = d.layers.map((m, i) => ({ m, z: d.zeroExperts[i], label: d.layerLabels[i]! })).filter((x) => x.z);
  if (!rows.length) return '';
  const kinds = [...new Set(rows.map((x) => x.z!.kind))].join(' / ');
  return `<p class="note zero">Zero-computation experts (${esc(kinds)}; marked <b>z</b> under their columns): ${rows
    .map((x) => `layer ${esc(x.label)}: experts ${esc(x.z!.ids.join(', '))}, ${pct(x.m.zeroShare ?? NaN)} of its slots`)
    .join(
      '; ',
    )}. Their output is the token itself or nothing, so the balance metrics of these layers (CV, MaxVio, entropy, dead, top-N, coverage) cover the other experts only, as LongCat balances them; the share routed to the zero experts is its own metric (zero-expert share).</p>`;
}

/** Each layer's expert bins: its own E in bins of one size (the widest layer's), so columns line up across rows. */
function layerBins(d: ReportData): ExpertBin[][] {
  const size = expertBins(d.schema.experts)[0]!;
  const width = size.last - size.first + 1;
  return d.layers.map((_, l) => expertBinsOf(expertsAt(d.schema, l), width));
}

/** "the layer's top-2 assignments", or with layers of different K "the layer's assignments (its own top-k)". */
function assignmentsOf(d: ReportData): string {
  return d.shapes
    ? "the layer's assignments (top-k of its own experts)"
    : `the layer's top-${d.schema.topK} assignments`;
}

function loadHeatmap(d: ReportData, bins: ExpertBin[][]): string {
  const widest = bins.reduce((a, b) => (b.length > a.length ? b : a));
  const values = d.layers.map((m, l) => binValues(m.share, bins[l]!));
  const binSize = widest[0]!.last - widest[0]!.first + 1;
  // The balanced share of a bin: one per expert count (layers of different E balance at different shares).
  const counts = [...new Set(d.layers.map((_, l) => expertsAt(d.schema, l)))].sort((a, b) => b - a);
  const balanced = binSize / counts[0]!;
  const max = scaleMax(values, Math.max(...counts.map((e) => binSize / e)));
  const per = binSize === 1 ? 'expert' : 'bin';
  const heat = heatmapSvg({
    id: 'load',
    rowLabels: d.layerLabels.map((x) => `layer ${x}`),
    // A column that is a zero-computation expert in some layer is labelled "z" after its id.
    colLabels: widest.map((b) => (d.layers.some((_, r) => zeroBin(d, r, b)) ? `${b.first}z` : String(b.first))),
    values,
    max,
    rowAxis: 'MoE layer',
    colAxis: binSize === 1 ? 'expert' : `expert (bins of ${binSize})`,
    legend:
      counts.length === 1
        ? `share of ${assignmentsOf(d)} (balanced: ${pct(balanced)} per ${per})`
        : `share of ${assignmentsOf(d)} (balanced: ${counts.map((e) => `${pct(binSize / e)} per ${per} of ${e}`).join(', ')})`,
    format: pct,
    marks:
      counts.length === 1
        ? [{ value: balanced, label: 'balanced' }]
        : counts.map((e) => ({ value: binSize / e, label: `E=${e}` })),
    title: (r, c) =>
      `layer ${d.layerLabels[r]} · ${binLabel(bins[r]![c]!)}${zeroBin(d, r, bins[r]![c]!) ? ` (zero-computation, ${d.zeroExperts[r]!.kind})` : ''} · ${pct(values[r]![c]!)} of assignments (${fmtCount(binValues(d.layers[r]!.load, [bins[r]![c]!])[0]!)})`,
    attrs: (r, c) => ({
      layer: d.layers[r]!.layer,
      bin: c,
      experts: `${bins[r]![c]!.first}-${bins[r]![c]!.last}`,
      ...(zeroBin(d, r, bins[r]![c]!) ? { zero: d.zeroExperts[r]!.kind } : {}),
    }),
  });
  const ragged =
    counts.length > 1 ? ' Layers differ in their number of experts: each row is as long as its layer has experts.' : '';
  return `<section id="heatmap"><h2>Expert load</h2>
<p class="note">Each cell is the share of ${assignmentsOf(d)} that went to an expert${binSize > 1 ? ` bin (${binSize} consecutive experts)` : ''}, over all ${fmtCount(d.tokens)} tokens.${ragged} Colour: viridis with the balanced share mid-ramp (teal); dark = under-used, yellow = hot. Hover a cell for its numbers.</p>${zeroNote(d)}
<div class="table-wrap">${heat}</div></section>`;
}

function loadBars(d: ReportData, bins: ExpertBin[][]): string {
  const binSize = bins[0]![0]!.last - bins[0]![0]!.first + 1;
  const all = d.layers.map((m, l) => binValues(m.share, bins[l]!));
  const max = Math.max(...all.flat(), 1e-12);
  const charts = d.layers.map((m, i) => {
    const own = bins[i]!;
    const loads = binValues(m.load, own);
    return barsSvg({
      title: `layer ${d.layerLabels[i]} — MaxVio ${fmt(m.maxVio, 2)}, dead ${m.deadExperts}${m.zeroShare !== null ? `, zero experts ${pct(m.zeroShare)} (z: ${d.zeroExperts[i]!.ids.join(', ')})` : ''}`,
      values: all[i]!,
      labels: own.map(
        (b, j) =>
          `layer ${d.layerLabels[i]} · ${binLabel(b)} · ${pct(all[i]![j]!)} (${fmtCount(loads[j]!)} assignments)`,
      ),
      dead: loads.map((c) => c === 0),
      max,
      balanced: binSize / expertsAt(d.schema, i),
      format: pct,
    });
  });
  return `<section id="bars"><h2>Load per layer</h2>
<p class="note">Bars: share of each layer's assignments per ${binSize === 1 ? 'expert' : `bin of ${binSize} experts`} (same scale in every chart). Dashed line: the balanced share. Marks under the axis: experts that received no token.</p>
<div class="grid">${charts.join('\n')}</div></section>`;
}

/**
 * The report narrowed to one shape's layers (mixed shapes): its schema, layers, whole-model metrics and domains,
 * so the per-shape sections are the uniform report's sections over them.
 */
function shapeView(d: ReportData, s: ShapeSummary): ReportData {
  return {
    ...d,
    schema: s.schema,
    layers: s.at.map((i) => d.layers[i]!),
    layerLabels: s.at.map((i) => d.layerLabels[i]!),
    global: s.global,
    topN: s.topN,
    domains: s.domains,
    otherDomains: s.otherDomains,
    shapes: null,
  };
}

/** "8 experts top-2 — layers 0, 3" */
function shapeTitle(d: ReportData): string {
  const n = d.layers.length;
  return `${d.schema.experts} experts top-${d.schema.topK} — ${n === 1 ? 'layer' : 'layers'} ${d.layerLabels.join(', ')}`;
}

function metricsTable(d: ReportData): string {
  if (d.shapes) {
    const parts = d.shapes.map((s) => metricsTable(shapeView(d, s)));
    return parts
      .map((html, i) =>
        html
          .replace(
            /^<section id="metrics"><h2>Metrics<\/h2>/,
            `<section id="metrics-${i}"><h2>Metrics: ${esc(shapeTitle(shapeView(d, d.shapes![i]!)))}</h2>`,
          )
          .replace('id="conventions"', `id="conventions-${i}"`),
      )
      .join('\n')
      .replace('<section id="metrics-0">', '<section id="metrics">');
  }
  const E = d.schema.experts;
  const K = d.schema.topK;
  const cols = METRIC_COLUMNS.filter((c) => !c.needsLogits || d.schema.hasLogits);
  const head = cols
    .map((c) => {
      const bal = c.balanced(E, K, d.topN);
      return `<th title="${esc(c.definition)}">${esc(c.key === 'topN' ? `top-${d.topN} share` : c.header)}<small>${bal ? `balanced ${esc(bal)}` : '&nbsp;'}</small></th>`;
    })
    .join('');
  const row = (m: LayerMetrics, i: number) =>
    `<tr><td class="l">${esc(d.layerLabels[i]!)}</td>${cols.map((c) => `<td>${esc(fmt(c.layer(m), c.digits))}</td>`).join('')}</tr>`;
  const total = `<tr class="total"><td class="l">all layers</td>${cols.map((c) => `<td>${esc(c.global ? fmt(c.global(d.global), c.digits) : NO_VALUE)}</td>`).join('')}</tr>`;
  const conventions = cols
    .map(
      (c) =>
        `<tr><td class="l">${esc(c.header)}</td><td class="l">${esc(c.definition)}</td><td class="l">${esc(c.source)}</td></tr>`,
    )
    .join('\n');
  const noLogits = d.schema.hasLogits
    ? ''
    : '<p class="note">This trace has no router logits, so the auxiliary losses, z-loss and router confidence are not shown (record with logits to get them).</p>';
  return `<section id="metrics"><h2>Metrics</h2>
<p class="note">Per MoE layer over the whole trace (T = ${fmtCount(d.tokens)} tokens, E = ${E} experts, K = ${K}). Each column is labelled with its value at perfect balance; conventions below.</p>
<div class="table-wrap"><table class="metrics"><thead><tr><th class="l">layer</th>${head}</tr></thead>
<tbody>${d.layers.map(row).join('\n')}${total}</tbody></table></div>${noLogits}${zeroNote(d)}
<h3 id="conventions">Conventions</h3>
<div class="table-wrap"><table class="conventions"><thead><tr><th class="l">metric</th><th class="l">definition</th><th class="l">convention / source</th></tr></thead>
<tbody>${conventions}</tbody></table></div></section>`;
}

function warningItem(w: CollapseWarning): string {
  const when = `tokens ${fmtCount(w.window.start)}–${fmtCount(w.window.end - 1)}`;
  const cleared = w.clearedAt === null ? 'still active at the end' : `cleared at token ${fmtCount(w.clearedAt)}`;
  return `<li><span class="rule">${esc(w.rule)}</span> ${esc(w.message)} — first in window ${esc(when)}; ${esc(cleared)}</li>`;
}

function warnings(d: ReportData): string {
  let body: string;
  if (d.counts) {
    body = `<p class="note">A count trace holds load counts per step, no per-token routing: collapse detection over token windows did not run.</p>`;
  } else if (d.window === 0) {
    body = `<p class="note">The trace is shorter than one detection window, so collapse detection did not run.</p>`;
  } else if (d.warnings.length === 0) {
    body = `<p class="ok">No collapse warnings over sliding windows of ${fmtCount(d.window)} tokens.</p>`;
  } else {
    const shown = d.warnings.slice(0, 200);
    const more = d.warnings.length - shown.length + d.suppressedWarnings;
    body = `<ul class="warnings">${shown.map(warningItem).join('\n')}</ul>${more > 0 ? `<p class="note">… and ${fmtCount(more)} more.</p>` : ''}`;
  }
  return `<section id="warnings"><h2>Warnings (${d.warnings.length})</h2>
<p class="note">Collapse detection over a sliding window of ${fmtCount(d.window)} tokens: dead experts, hot experts, low load entropy, high MaxVio, and drift (Jensen–Shannon, bits) from the first window; definitions in docs/metrics.md.</p>
${body}</section>`;
}

function devices(d: ReportData): string {
  const p = d.placement;
  if (!p) return '';
  const r = p.result;
  const devLabels = p.shapeRanges
    ? p.ranges.map((_, i) => `GPU ${i}`)
    : p.ranges.map(([a, b], i) => `GPU ${i} (experts ${a}–${b})`);
  // Layers that differ in E: each shape's experts per device.
  const held = p.shapeRanges
    ? p.shapeRanges
        .map((s) => `${s.shape}: ${s.ranges.map(([a, b], i) => `GPU ${i} experts ${a}–${b}`).join(', ')}`)
        .join('; ')
    : devLabels.join('; ');
  const values = r.devices.map((row) => Array.from(row));
  const max = scaleMax(values, Math.max(...r.mean));
  const heat = heatmapSvg({
    id: 'devices',
    rowLabels: d.layerLabels.map((x) => `layer ${x}`),
    colLabels: p.ranges.map((_, i) => String(i)),
    values,
    max,
    rowAxis: 'MoE layer',
    colAxis: 'device',
    legend: 'assignments routed to the device (mid-ramp: the even share)',
    format: (v) => fmtCount(Math.round(v)),
    title: (row, c) =>
      `layer ${d.layerLabels[row]} · ${devLabels[c]} · ${fmtCount(Math.round(r.devices[row]![c]!))} assignments`,
    attrs: (row, c) => ({ layer: d.layers[row]!.layer, device: c }),
    maxWidth: 480,
  });
  const rows = d.layers
    .map(
      (_, i) =>
        `<tr><td class="l">${esc(d.layerLabels[i]!)}</td><td>${fmtCount(Math.round(r.mean[i]!))}</td><td>${fmtCount(Math.round(r.max[i]!))}</td><td>${fmt(r.perLayer[i]!, 3)}</td></tr>`,
    )
    .join('\n');
  return `<section id="devices"><h2>Placement on ${p.devices} devices</h2>
<p class="note">Contiguous expert-parallel placement (expert e on device ⌊e·D/E⌋, no replicas${p.shapeRanges ? ', each layer over its own E' : ''}): ${esc(held)}. Balancedness is 1 when every device gets the same load.</p>
<p>Balancedness: <b>${fmt(r.sglang, 3)}</b> (SGLang: mean over layers of (mean + 10⁻⁵)/(max + 10⁻⁵)) · <b>${fmt(r.vllm, 3)}</b> (vLLM: Σ mean / Σ max over layers)</p>
<div class="table-wrap">${heat}</div>
<div class="table-wrap"><table><thead><tr><th class="l">layer</th><th>mean device load</th><th>busiest device</th><th>balancedness<small>SGLang, 1 = even</small></th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

function domainsSection(d: ReportData, bins: ExpertBin[]): string {
  if (d.shapes) {
    const size = bins[0]!.last - bins[0]!.first + 1;
    return d.shapes
      .map((s, i) => {
        const v = shapeView(d, s);
        const html = domainsSection(v, expertBinsOf(v.schema.experts, size));
        return html.replace(
          /^<section id="domains"><h2>Domain specialisation<\/h2>/,
          `<section id="${i === 0 ? 'domains' : `domains-${i}`}"><h2>Domain specialisation: ${esc(shapeTitle(v))}</h2>`,
        );
      })
      .join('\n');
  }
  if (!d.domains) return '';
  const E = d.schema.experts;
  const K = d.schema.topK;
  const binSize = bins[0]!.last - bins[0]!.first + 1;
  const doms = d.domains;
  const shown = spreadPick(d.layers.length, MAX_DOMAIN_MAPS);
  const perLayer = shown.map((l) => ({
    layer: d.layers[l]!.layer,
    // With several routers per layer (JetMoE: attention and mlp) the label names the model layer and role.
    label: d.layerLabels[l]!,
    values: doms.map((dom) => binValues(dom.layers[l]!.share, bins)),
  }));
  const max = scaleMax(
    perLayer.flatMap((p) => p.values),
    (binSize * K) / E,
  );
  const maps = perLayer.map(
    (p) =>
      `<div><h3>layer ${esc(p.label)}</h3>${heatmapSvg({
        id: `domain-${p.layer}`,
        rowLabels: doms.map((x) => x.tag),
        colLabels: bins.map((b) => String(b.first)),
        values: p.values,
        max,
        rowAxis: 'domain',
        colAxis: binSize === 1 ? 'expert' : `expert (bins of ${binSize})`,
        legend: "share of the domain's tokens routed to the expert",
        format: pct,
        marks: [{ value: (binSize * K) / E, label: 'uniform' }],
        title: (r, c) =>
          `${doms[r]!.tag} · layer ${p.label} · ${binLabel(bins[c]!)} · ${pct(p.values[r]![c]!)} of the domain's tokens`,
        attrs: (r, c) => ({ domain: doms[r]!.tag, layer: p.layer, bin: c }),
        maxWidth: 520,
      })}</div>`,
  );
  const rows = doms
    .map(
      (dom) =>
        `<tr><td class="l">${esc(dom.tag)}</td><td>${fmtCount(dom.tokens)}</td>${dom.layers
          .map(
            (x) =>
              `<td title="${esc(`top experts: ${x.top.map((t) => `${t.expert} (${pct(t.share)})`).join(', ')}`)}">${x.top[0] ? `expert ${x.top[0].expert} · ${fmt(x.specialisation, 2)}×` : NO_VALUE}</td>`,
          )
          .join('')}</tr>`,
    )
    .join('\n');
  const other = d.otherDomains > 0 ? `<p class="note">${d.otherDomains} less frequent tags are not shown.</p>` : '';
  const some =
    shown.length < d.layers.length
      ? `<p class="note">Heatmaps for ${shown.length} of the ${d.layers.length} layers, evenly spaced; the table lists every layer.</p>`
      : '';
  return `<section id="domains"><h2>Domain specialisation</h2>
<p class="note">OLMoE's domain specialisation (arXiv 2409.02060 §5): for each domain tag, the share of its tokens routed to each expert (top-${K}); uniform routing gives K/E = ${pct(K / E)} per expert. An expert much brighter in one row than in the others specialises in that domain.</p>
<div class="table-wrap"><table class="domains"><thead><tr><th class="l">domain</th><th>tokens</th>${d.layers
    .map((_, i) => `<th>layer ${esc(d.layerLabels[i]!)}<small>top expert · × uniform</small></th>`)
    .join('')}</tr></thead><tbody>${rows}</tbody></table></div>${other}${some}
<div class="grid">${maps.join('\n')}</div></section>`;
}

export function renderReportHtml(d: ReportData, opts: PageOptions): string {
  const bins = layerBins(d);
  const sections = [
    loadHeatmap(d, bins),
    loadBars(d, bins),
    metricsTable(d),
    warnings(d),
    devices(d),
    domainsSection(d, expertBins(d.schema.experts)),
  ];
  const links: [string, string][] = [
    ['heatmap', 'Expert load'],
    ['bars', 'Load per layer'],
    ['metrics', 'Metrics'],
    ['warnings', 'Warnings'],
  ];
  if (d.placement) links.push(['devices', 'Placement']);
  if (d.domains || d.shapes?.some((s) => s.domains)) links.push(['domains', 'Domains']);
  const header = `<header><h1>MoE routing report</h1><p class="subject">${esc(d.subject)}</p>${facts(d)}${unfollowedNote(d)}</header>
<nav>${links.map(([id, t]) => `<a href="#${id}">${esc(t)}</a>`).join('')}</nav>`;
  return htmlPage(
    d.subject,
    opts,
    `${header}\n${sections.filter((s) => s !== '').join('\n')}`,
    'Metric definitions: docs/metrics.md.',
  );
}

/**
 * A whole report page around `body` (the routing report, the balancedness report): no scripts, no network (the
 * Content-Security-Policy says so to the browser), the page's CSS inline, the footer saying what made it and when.
 */
export function htmlPage(subject: string, opts: PageOptions, body: string, footerNote: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="moescope ${esc(opts.moescopeVersion)}">
<title>moescope report — ${esc(subject)}</title>
<style>${CSS}</style></head>
<body><main>
${body}
<footer>Generated by moescope ${esc(opts.moescopeVersion)} on ${esc(opts.generatedAt.toISOString())}. Self-contained: no scripts, no network. ${footerNote}</footer>
</main></body></html>
`;
}
