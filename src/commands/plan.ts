import type { Command } from 'commander';
import { datasetOptions, intArg, type DatasetFlags } from './options.js';

interface PlanFlags extends DatasetFlags {
  weights?: string;
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
  json?: boolean;
}

export function registerPlan(program: Command): void {
  const cmd = program
    .command('plan')
    .description('expert placement with DeepSeek EPLB: replicate hot experts, pack onto nodes and GPUs')
    .argument('[trace]', 'trace whose expert loads to balance, or a folder / quoted glob of traces (or --weights)')
    .option('--weights <file>', 'JSON [[load per logical expert] per layer]')
    .requiredOption(
      '--replicas <r>',
      'expert slots per layer over all GPUs (≥ experts, a multiple of --gpus)',
      intArg('--replicas', 1),
    )
    .option(
      '--groups <g>',
      'expert groups (DeepSeek-V3: 8); hierarchical policy when --nodes divides it',
      intArg('--groups', 1),
      1,
    )
    .option('--nodes <n>', 'nodes (GPUs split evenly over them)', intArg('--nodes', 1), 1)
    .requiredOption('--gpus <p>', 'GPUs in all (EP ranks)', intArg('--gpus', 1))
    .option('--json', 'print phy2log, log2phy, logcnt and balancedness as JSON')
    .addHelpText(
      'after',
      "\nBefore: experts on GPUs contiguously (expert e on GPU ⌊e·P/E⌋), no replicas. After: EPLB's placement.\n" +
        'Balancedness = mean GPU load ÷ busiest GPU load, as SGLang and vLLM compute it (docs/placement.md).',
    );
  datasetOptions(cmd).action(async (trace: string | undefined, flags: PlanFlags) => runPlan(trace, flags));
}

interface Loads {
  source: string;
  /** The model's layer index of each row (row position for a weights file). */
  layers: number[];
  loads: Float64Array[];
  /** Something the reader should know about the input (a cut-short trace). */
  note?: string;
  /**
   * Layers that differ in E or K (src/core/shapes.ts): the shapes, each with the positions of its layers in
   * `layers`; then each load has its layer's own E and each shape is planned on its own.
   */
  shapes?: { experts: number; topK: number; at: number[] }[];
}

async function runPlan(trace: string | undefined, flags: PlanFlags): Promise<void> {
  const { UserError } = await import('../core/errors.js');
  if ((trace === undefined) === (flags.weights === undefined))
    throw new UserError('plan needs either a trace or --weights FILE.json (not both)');
  const { isDataset } = await import('./dataset-action.js');
  const input =
    trace === undefined
      ? await loadsFromWeights(flags.weights!)
      : (await isDataset(trace, flags))
        ? await loadsFromDataset(trace, flags)
        : await loadsFromTrace(trace);
  const { comparePlacements, eplbAdvice } = await import('../stats/eplb-plan.js');
  const { replicas, groups, nodes, gpus } = flags;
  const { printJson, printText } = await import('../core/sanitize.js');
  // Layers of different shapes: one plan per shape, each over its layers' own E (a GPU holds slots of every layer,
  // but EPLB places each layer's experts on its own; the shapes differ only in how many experts there are to place).
  const parts: Loads[] = input.shapes
    ? input.shapes.map((sh) => ({
        source: `${input.source} · ${sh.at.length === 1 ? 'layer' : 'layers'} ${sh.at.map((i) => input.layers[i]).join(', ')} (${sh.experts} experts top-${sh.topK})`,
        layers: sh.at.map((i) => input.layers[i]!),
        loads: sh.at.map((i) => input.loads[i]!),
        ...(input.note ? { note: input.note } : {}),
      }))
    : [input];
  const plans = parts.map((part) => {
    const cmp = comparePlacements(part.loads, { replicas, groups, nodes, gpus });
    return { part, cmp, advice: eplbAdvice(cmp) };
  });
  // cli.tsx drains stdout before exiting and ends quietly on EPIPE
  if (!input.shapes) {
    const { part, cmp, advice } = plans[0]!;
    if (flags.json) printJson(`${JSON.stringify(planJson(part, cmp, advice))}\n`);
    else printText(formatPlan(part, cmp, advice));
    return;
  }
  const shapes = input.shapes;
  if (flags.json) {
    const doc = {
      source: input.source,
      ...(input.note ? { note: input.note } : {}),
      layers: input.layers,
      layerExperts: input.layers.map((_, i) => shapes.find((sh) => sh.at.includes(i))!.experts),
      layerTopK: input.layers.map((_, i) => shapes.find((sh) => sh.at.includes(i))!.topK),
      // One plan per shape, in the order its first layer appears; each as a uniform trace's plan.
      shapes: plans.map(({ part, cmp, advice }, i) => ({
        shape: { experts: shapes[i]!.experts, topK: shapes[i]!.topK },
        ...(planJson(part, cmp, advice) as object),
      })),
    };
    printJson(`${JSON.stringify(doc)}\n`);
    return;
  }
  const head =
    `${input.source}: layers differ in experts/k (` +
    input.layers
      .map((id, i) => {
        const sh = shapes.find((x) => x.at.includes(i))!;
        return `layer ${id}: ${sh.experts} experts top-${sh.topK}`;
      })
      .join(', ') +
    '); one EPLB plan per shape\n\n';
  printText(head + plans.map(({ part, cmp, advice }) => formatPlan(part, cmp, advice)).join('\n'));
}

/** The shapes of a mixed schema, positions of their layers (absent when every layer has one shape). */
async function shapesOf(schema: import('../core/batch.js').RoutingSchema): Promise<Loads['shapes']> {
  const { shapeGroups } = await import('../core/shapes.js');
  const groups = shapeGroups(schema);
  if (groups.length === 1) return undefined;
  return groups.map((g) => ({ experts: g.schema.experts, topK: g.schema.topK, at: g.positions }));
}

/** Per-layer loads of L layers from counts laid out L × `width` (the largest E), each cut to its own E. */
function ownLoads(counts: Float64Array, schema: import('../core/batch.js').RoutingSchema, E: (l: number) => number) {
  const width = schema.experts;
  return schema.layers.map((_, l) => counts.slice(l * width, l * width + E(l)));
}

async function loadsFromWeights(file: string): Promise<Loads> {
  const { readFileSync } = await import('node:fs');
  const { UserError, describeError } = await import('../core/errors.js');
  const { checkLoads } = await import('../stats/placement.js');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? `${file}: no such weights file` : `cannot read ${file}: ${describeError(e)}`,
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${describeError(e)})`);
  }
  if (!Array.isArray(data) || data.length === 0 || !data.every((row) => Array.isArray(row)))
    throw new UserError(`${file}: expected [[load per logical expert] per layer], a non-empty array of arrays`);
  const rows = data as unknown[][];
  try {
    checkLoads(rows as number[][]);
  } catch (e) {
    throw new UserError(`${file}: ${describeError(e)}`);
  }
  return { source: file, layers: rows.map((_, i) => i), loads: rows.map((r) => Float64Array.from(r as number[])) };
}

/** A dataset's expert loads, counted by its engine (docs/scale.md) and summed over every step window. */
async function loadsFromDataset(arg: string, flags: PlanFlags): Promise<Loads> {
  const { countDatasetArg, datasetNote } = await import('./dataset-action.js');
  const { addCountRows } = await import('../stats/counts.js');
  const { expertsAt } = await import('../core/batch.js');
  const c = await countDatasetArg(arg, flags);
  const schema = c.ds.schema;
  const { layers, experts } = schema;
  const L = layers.length;
  const b = c.table.toBatch();
  const counts = new Float64Array(L * experts);
  addCountRows(b.counts, b.length, L, experts, counts);
  const shapes = await shapesOf(schema);
  return {
    source: arg,
    layers: [...layers],
    loads: ownLoads(counts, schema, (l) => expertsAt(schema, l)),
    note: datasetNote(c),
    ...(shapes ? { shapes } : {}),
  };
}

/** Expert selections per layer over every complete token of the trace (read as a RoutingStream): the load a server would have seen. */
async function loadsFromTrace(path: string): Promise<Loads> {
  const { UserError } = await import('../core/errors.js');
  const { openTrace, traceStream } = await import('../trace/index.js');
  const { addCountRows, countAssignments } = await import('../stats/counts.js');
  const stream = traceStream(openTrace(path), { reuse: true }); // counting keeps no batch
  try {
    const { expertsAt } = await import('../core/batch.js');
    const schema = stream.schema;
    const { layers, experts, topK } = schema;
    const L = layers.length;
    const info = stream.countInfo;
    if (info && info.axis !== 'expert')
      throw new UserError(`${path} counts load per device without expert ids: placement needs counts per expert`);
    const rows = stream.tokens!;
    if (rows === 0) throw new UserError(`${path}: the trace holds no complete ${info ? 'steps' : 'tokens'} to count`);
    const counts = new Float64Array(L * experts);
    const shapes = await shapesOf(schema);
    const { shapeGroups, groupBatch } = await import('../core/shapes.js');
    const groups = shapeGroups(schema);
    const groupCounts = groups.map((g) => new Float64Array(g.schema.layers.length * g.schema.experts));
    for await (const item of stream.items())
      if (item.kind === 'counts') addCountRows(item.batch.counts, item.batch.length, L, experts, counts);
      else if (item.kind === 'tokens') {
        if (!shapes) countAssignments(item.batch.experts, 0, item.batch.length, L, topK, experts, counts);
        // Each shape's layers in their own E and K (src/core/shapes.ts), counted by the one counting loop.
        else
          groups.forEach((g, i) => {
            const own = groupBatch(item.batch, schema, g);
            const { layers: gl, experts: e, topK: k } = g.schema;
            countAssignments(own.experts, 0, own.length, gl.length, k, e, groupCounts[i]!);
          });
      }
    groups.forEach((g, i) => {
      if (!shapes) return;
      const e = g.schema.experts;
      g.positions.forEach((l, at) => {
        for (let x = 0; x < e; x++) counts[l * experts + x]! += groupCounts[i]![at * e + x]!;
      });
    });
    const loads = ownLoads(counts, schema, (l) => expertsAt(schema, l));
    const unit = info ? 'steps' : 'tokens';
    const { complete, truncated } = await stream.end();
    const { flagTruncated, noteUnclosed } = await import('./truncation.js');
    const note = truncated
      ? `${path} is cut short: counted its ${rows} complete ${unit}`
      : (noteUnclosed(path, { complete, truncated, tokenCount: rows }) ?? undefined);
    flagTruncated(path, truncated, rows);
    return { source: path, layers: [...layers], loads, ...(note ? { note } : {}), ...(shapes ? { shapes } : {}) };
  } finally {
    stream.close();
  }
}

type Comparison = import('../stats/eplb-plan.js').PlanComparison;
type Summary = import('../stats/eplb-plan.js').PlacementSummary;

type Advice = import('../stats/eplb-plan.js').EplbAdvice;

function planJson(input: Loads, c: Comparison, advice: Advice): unknown {
  const side = (s: Summary, placement: string) => ({
    placement,
    balancedness: { sglang: s.sglang, vllm: s.vllm },
    perLayer: s.perLayer,
    maxOverMean: s.maxOverMean,
    gpuLoads: s.devices.map((d) => Array.from(d)),
    gpuTotals: s.gpuTotals,
  });
  return {
    source: input.source,
    ...(input.note ? { note: input.note } : {}),
    layers: input.layers,
    experts: c.experts,
    ...c.options,
    policy: c.plan.policy,
    before: side(c.before, 'contiguous'),
    after: side(c.after, 'eplb'),
    phy2log: c.plan.phy2log,
    log2phy: c.plan.log2phy,
    logcnt: c.plan.logcnt,
    advice: { turnOn: advice.turnOn, speedup: advice.speedup, text: advice.text },
  };
}

const num = (v: number, digits = 3) => v.toFixed(digits);
const load = (v: number) => String(Number(v.toPrecision(6)));
const pad = (s: string, w: number) => s.padStart(w);

function formatPlan(input: Loads, c: Comparison, advice: Advice): string {
  const { replicas, groups, nodes, gpus } = c.options;
  const L = c.layers;
  const out: string[] = [];
  const policy =
    c.plan.policy === 'hierarchical' && nodes > 1
      ? `hierarchical policy: ${groups} groups packed ${groups / nodes} per node`
      : c.plan.policy === 'hierarchical'
        ? 'one node: replicas packed over all GPUs'
        : `global policy: ${groups} groups do not divide over ${nodes} nodes`;
  out.push(
    `EPLB plan for ${input.source}: ${L} layer${L === 1 ? '' : 's'} × ${c.experts} experts → ${replicas} slots on ` +
      `${nodes} node${nodes === 1 ? '' : 's'} × ${gpus / nodes} GPUs (${replicas / gpus} per GPU); ${policy}`,
  );
  if (input.note) out.push(`note: ${input.note}`);
  out.push('');
  const rows: [string, string, string][] = [
    ['balancedness (SGLang)', num(c.before.sglang), num(c.after.sglang)],
    ['balancedness (vLLM)', num(c.before.vllm), num(c.after.vllm)],
    ['busiest GPU ÷ mean', `${num(c.before.maxOverMean, 2)}×`, `${num(c.after.maxOverMean, 2)}×`],
  ];
  const rep = [...new Set(c.replicated)].sort((x, y) => x - y);
  const repText = rep.length === 1 ? String(rep[0]) : `${rep[0]}–${rep[rep.length - 1]}`;
  rows.push(['experts replicated', '—', `${repText}/layer${c.maxReplicas > 1 ? `, ≤${c.maxReplicas} copies` : ''}`]);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max('contiguous'.length, ...rows.map((r) => r[1].length));
  const w2 = Math.max('EPLB'.length, ...rows.map((r) => r[2].length));
  out.push(`${''.padEnd(w0)}  ${pad('before', w1)}  ${pad('after', w2)}`);
  out.push(`${''.padEnd(w0)}  ${pad('contiguous', w1)}  ${pad('EPLB', w2)}`);
  for (const [a, b, d] of rows) out.push(`${a.padEnd(w0)}  ${pad(b, w1)}  ${pad(d, w2)}`);
  out.push('');

  // Per layer when there are few, else the least balanced ones.
  const label = (i: number) => `layer ${input.layers[i]}`;
  if (L <= 8) {
    out.push('per layer (SGLang ratio mean ÷ max GPU load):');
    for (let i = 0; i < L; i++)
      out.push(`  ${label(i).padEnd(10)} ${num(c.before.perLayer[i]!)} → ${num(c.after.perLayer[i]!)}`);
  } else {
    out.push(`least balanced layers before (of ${L}; SGLang ratio, before → after):`);
    for (const ch of c.worstBefore) out.push(`  ${label(ch.index).padEnd(10)} ${num(ch.before)} → ${num(ch.after)}`);
    out.push('least balanced layers after:');
    for (const ch of c.worstAfter) out.push(`  ${label(ch.index).padEnd(10)} ${num(ch.before)} → ${num(ch.after)}`);
  }
  out.push('');

  // Per-GPU load summed over layers.
  const perNode = gpus / nodes;
  const b = c.before.gpuTotals;
  const a = c.after.gpuTotals;
  const wl = Math.max(6, ...b.map((v) => load(v).length), ...a.map((v) => load(v).length));
  if (gpus <= 16) {
    out.push(`load per GPU, summed over ${L === 1 ? 'the layer' : `${L} layers`}:`);
    out.push(`  GPU  node  ${pad('before', wl)}  ${pad('after', wl)}`);
    for (let g = 0; g < gpus; g++)
      out.push(
        `  ${pad(String(g), 3)}  ${pad(String(Math.floor(g / perNode)), 4)}  ${pad(load(b[g]!), wl)}  ${pad(load(a[g]!), wl)}`,
      );
  } else {
    const ext = (s: Summary) =>
      `busiest GPU ${s.busiestGpu} (${load(s.gpuTotals[s.busiestGpu]!)}), ` +
      `idlest GPU ${s.idlestGpu} (${load(s.gpuTotals[s.idlestGpu]!)})`;
    out.push(`load per GPU, summed over ${L} layers (--json lists every GPU):`);
    out.push(`  before: ${ext(c.before)}`);
    out.push(`  after:  ${ext(c.after)}`);
  }
  out.push('', `should EPLB be on? ${advice.text}`);
  out.push('', 'phy2log / log2phy / logcnt: --json');
  return `${out.join('\n')}\n`;
}
