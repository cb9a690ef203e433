/**
 * `moescope inspect`: what discovery found, as a stable JSON document (docs/inspect.md) and as a table.
 */
import { fmtBytes } from '../core/number-format.js';
import { formatTable } from '../core/text-table.js';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { PATTERNS_TRIED, discoverRouters, requireRouters, type RouterInfo } from './discover.js';
import { loadModel, toNum } from './onnx-model.js';

/** One router in the inspect JSON. Field order and names are part of the documented format. */
export interface InspectRouter {
  layer: number;
  identity: RouterInfo['identity'];
  experts: number;
  topK: number;
  scoring: RouterInfo['scoring'];
  kind: RouterInfo['kind'];
  selection: RouterInfo['selection'];
  renormalize: boolean | null;
  scalingFactor: number | null;
  bias: string | null;
  groups: RouterInfo['groups'];
  sharedExpert: RouterInfo['sharedExpert'];
  expertBytes: number | null;
  layerSource: RouterInfo['layerSource'];
  node: string;
  tensors: RouterInfo['tensors'];
  mixing: RouterInfo['mixing'];
  zeroExperts: RouterInfo['zeroExperts'];
}

export interface InspectReport {
  model: string;
  format: {
    irVersion: number;
    opsets: Record<string, number>;
    producer: string | null;
    externalData: string[];
  };
  inputs: string[];
  /** True when the model takes past_key_values.* (KV-cache decode). */
  kvCache: boolean;
  numLayers: number | null;
  denseLayers: number[];
  routers: InspectRouter[];
  patternsTried: string[];
}

export interface InspectOptions {
  /** Throw a UserError when no router is found (default true). */
  requireRouters?: boolean;
}

export function inspectModel(path: string, opts: InspectOptions = {}): InspectReport {
  const m = loadModel(path);
  const found = opts.requireRouters === false ? discoverRouters(m) : requireRouters(m, path);
  const model = statSync(path).isDirectory() ? join(path, 'model.onnx') : path;
  const opsets: Record<string, number> = {};
  for (const o of m.model.opset_import) opsets[o.domain || 'ai.onnx'] = toNum(o.version);
  const inputs = [...m.graph.inputs];
  return {
    model,
    format: {
      irVersion: toNum(m.model.ir_version),
      opsets,
      producer: m.model.producer_name
        ? `${m.model.producer_name}${m.model.producer_version ? ' ' + m.model.producer_version : ''}`
        : null,
      externalData: m.externalFiles,
    },
    inputs,
    kvCache: inputs.some((n) => n.startsWith('past_key_values.') || n.startsWith('past.')),
    numLayers: found.numLayers,
    denseLayers: found.denseLayers,
    routers: found.routers.map((r) => ({
      layer: r.layer,
      identity: r.identity,
      experts: r.experts,
      topK: r.topK,
      scoring: r.scoring,
      kind: r.kind,
      selection: r.selection,
      renormalize: r.renormalize,
      scalingFactor: r.scalingFactor,
      bias: r.bias,
      groups: r.groups,
      sharedExpert: r.sharedExpert,
      expertBytes: r.expertBytes,
      layerSource: r.layerSource,
      node: r.node,
      tensors: r.tensors,
      mixing: r.mixing,
      zeroExperts: r.zeroExperts,
    })),
    patternsTried: PATTERNS_TRIED,
  };
}

function table(rows: string[][]): string[] {
  return formatTable(rows, { indent: '', align: rows[0]!.map((_, i) => (i === 0 ? 'right' : 'left')) });
}

/** The human-readable form. */
export function formatInspect(r: InspectReport): string {
  const out: string[] = [];
  const opsets = Object.entries(r.format.opsets)
    .map(([d, v]) => (d === 'ai.onnx' ? `opset ${v}` : `${d} ${v}`))
    .join(', ');
  out.push(`${r.model}`);
  out.push(
    `  IR ${r.format.irVersion}, ${opsets}${r.format.producer ? `, by ${r.format.producer}` : ''}` +
      `${r.format.externalData.length ? `, external data ${r.format.externalData.join(', ')}` : ''}`,
  );
  out.push(
    `  inputs: ${r.inputs.filter((n) => !n.startsWith('past')).join(', ')}${r.kvCache ? ' + KV cache (past_key_values.*)' : ' (no KV cache: full recompute per token)'}`,
  );
  const dense = r.denseLayers.length ? `; dense layers ${r.denseLayers.join(', ')}` : '';
  out.push(
    `  ${r.routers.length} MoE layer${r.routers.length === 1 ? '' : 's'}${r.numLayers !== null ? ` of ${r.numLayers}` : ''}${dense}`,
  );
  out.push('');
  const rows: string[][] = [
    [
      'layer',
      'router',
      'kind',
      'experts',
      'k',
      'scoring',
      'selection',
      'renorm',
      'scale',
      'groups',
      'bias',
      'shared expert',
      'expert size',
      'weights',
    ],
  ];
  for (const x of r.routers)
    rows.push([
      String(x.layer),
      `${x.identity.layer ?? '?'} ${x.identity.role}`,
      x.kind,
      String(x.experts),
      String(x.topK),
      x.scoring,
      x.selection,
      x.renormalize === null ? '?' : x.renormalize ? 'yes' : 'no',
      x.scalingFactor === null ? '—' : String(+x.scalingFactor.toPrecision(4)),
      x.groups ? `${x.groups.topk} of ${x.groups.count}` : '—',
      x.bias ? 'yes' : '—',
      x.sharedExpert ? `${fmtBytes(x.sharedExpert.bytes)}${x.sharedExpert.gated ? ', gated' : ''}` : '—',
      fmtBytes(x.expertBytes),
      x.mixing.status === 'followed' ? (x.mixing.note ? 'followed*' : 'followed') : x.mixing.status,
    ]);
  out.push(...table(rows).map((l) => '  ' + l));
  out.push('');
  out.push('  tensors:');
  for (const x of r.routers) {
    const t = x.tensors;
    const parts = [`logits ${t.logits}`];
    if (t.ids) parts.push(`ids ${t.ids}`);
    if (t.weights) parts.push(`weights ${t.weights}`);
    if (x.selection === 'derived') parts.push('selection derived from the logits following the op attributes');
    out.push(`    L${x.layer}: ${parts.join(' · ')}`);
  }
  for (const x of r.routers) {
    if (x.mixing.status === 'not-followed')
      out.push(
        `  L${x.layer}: weights not followed to the mixing (${x.mixing.note}); the selection is recorded, its weights are not.`,
      );
    else if (x.mixing.note)
      out.push(`  L${x.layer}*: ${x.mixing.note}: scoring/renormalisation reported as unknown where it matters.`);
  }
  for (const x of r.routers) {
    const z = x.zeroExperts;
    if (!z) continue;
    const what =
      z.kind === 'identity'
        ? "their weight scales the token's own hidden state"
        : z.kind === 'zero'
          ? 'their weight multiplies nothing'
          : 'what they compute is unclear from the graph';
    out.push(
      `  L${x.layer}: ${z.ids.length} zero-computation experts (${z.kind}): ${idRanges(z.ids)} of ${x.experts} — ${what}; stats balance over the other ${x.experts - z.ids.length}.`,
    );
  }
  if (r.routers.some((x) => x.layerSource === 'order' && x.identity.layer !== null))
    out.push(
      '  note: several routers share a layer; the stream numbers them in graph order, `router` says which layer and role each is.',
    );
  else if (r.routers.some((x) => x.layerSource === 'order'))
    out.push("  note: the graph does not name its layers; layer numbers are the routers' order in the graph.");
  return out.join('\n');
}

/** Ascending ids as ranges: "6–7", "0, 3–5". */
function idRanges(ids: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    out.push(j > i ? `${ids[i]}–${ids[j]}` : String(ids[i]));
    i = j + 1;
  }
  return out.join(', ');
}
