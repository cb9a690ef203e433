import type { Command } from 'commander';
import { DEFAULT_COLLAPSE_WINDOW } from '../stats/defaults.js';
import { datasetOptions, floatArg, intArg, type DatasetFlags } from './options.js';
import type { CollapseRules } from '../stats/collapse.js';

interface StatsFlags extends DatasetFlags {
  json?: boolean;
  devices?: number;
  window: number;
  capacityFactor: number;
  batchTokens: number;
  biasRate: number;
  vocabLayer?: number;
  warnHot?: number;
  warnEntropy?: number;
  warnMaxvio?: number;
  warnDrift?: number;
  /** false with --no-logit-sums. */
  logitSums?: boolean;
}

export function registerStats(program: Command): void {
  const cmd = program
    .command('stats')
    .description('balance metrics of a trace, each labelled with its framework convention (docs/metrics.md)')
    .argument('<trace>', 'Arrow trace (.arrows), or a folder / quoted glob of Arrow and Parquet traces (docs/scale.md)')
    .option('--json', 'print the stable JSON form (docs/metrics.md § The stats JSON)')
    .option('--devices <d>', 'balancedness over D devices (contiguous placement)', intArg('--devices', 1))
    .option(
      '--window <w>',
      'sliding window in tokens for collapse detection (0 = off; default 512, as in report and the TUI)',
      intArg('--window', 0),
      DEFAULT_COLLAPSE_WINDOW,
    )
    .option(
      '--capacity-factor <cf>',
      'capacity factor of the capacity simulation',
      floatArg('--capacity-factor', 0),
      1.25,
    )
    .option(
      '--batch-tokens <n>',
      'tokens per simulated batch (capacity, loss-free bias updates)',
      intArg('--batch-tokens', 1),
      4096,
    )
    .option('--bias-rate <u>', 'bias update rate of the DeepSeek loss-free replay', floatArg('--bias-rate', 0), 0.001)
    .option(
      '--vocab-layer <i>',
      'MoE layer index (0-based) for vocabulary specialisation (default: last)',
      intArg('--vocab-layer', 0),
    )
    .option(
      '--warn-hot <share>',
      "hot-expert threshold: share of a layer's assignments (default 3/E)",
      floatArg('--warn-hot', 0),
    )
    .option('--warn-entropy <h>', 'low load-entropy threshold, normalised (default 0.8)', floatArg('--warn-entropy', 0))
    .option('--warn-maxvio <v>', 'MaxVio threshold (default 1.5)', floatArg('--warn-maxvio', 0))
    .option(
      '--warn-drift <bits>',
      'drift threshold, JS divergence from the first window in bits (default 0.05)',
      floatArg('--warn-drift', 0),
    )
    .option(
      '--no-logit-sums',
      'a folder or glob with logits: skip the logits sums (losses, z-loss, margins), count only',
    );
  datasetOptions(cmd)
    .action(async (file: string, flags: StatsFlags) => {
      const { isDataset } = await import('./dataset-action.js');
      const out = (await isDataset(file, flags)) ? await datasetStats(file, flags) : await runStats(file, flags);
      const { printJson, printText } = await import('../core/sanitize.js');
      if (flags.json) printJson(out);
      else printText(out);
    })
    .addHelpText(
      'after',
      '\nA trace cut short is analysed over its complete tokens, then reported on stderr with exit code 2.\n' +
        "A folder or glob (quoted: 'runs/*.parquet') is counted per (step window, layer, expert) by --engine\n" +
        '(duckdb past one file) and measured from those counts: the count-defined metrics; where every file has\n' +
        'logits, the same engine sums them too (losses, z-loss, entropy, margins; docs/scale.md).\n' +
        'A large trace without logits is analysed in layer ranges on the cores (MOESCOPE_STATS_WORKERS=N sets the\n' +
        'worker threads, 0 for one thread); the output is the same (docs/metrics.md).',
    );
}

/**
 * `moescope stats`: the trace as a RoutingStream → stats accumulators → JSON or text (stats never imports trace;
 * this composes them). A second pass, when an analysis needs one, re-reads the file through the stream's `seek`.
 */
async function runStats(file: string, flags: StatsFlags): Promise<string> {
  const [
    { openTrace, traceStream },
    { tokenBatches },
    { TraceAnalysis, defaultAnalysisOptions },
    { formatStatsText },
    { balancedness },
    { contiguousPlacement },
    { UserError },
    { logitsScorer },
    { expertsAt, describeLayerShapes },
    { shapeGroups, groupBatch },
    { SplitAnalysis, statsWorkers },
  ] = await Promise.all([
    import('../trace/index.js'),
    import('../core/routing-stream.js'),
    import('../stats/analysis.js'),
    import('../stats/text.js'),
    import('../stats/balancedness.js'),
    import('../stats/placement.js'),
    import('../core/errors.js'),
    import('../stats/logits-thread.js'),
    import('../core/batch.js'),
    import('../core/shapes.js'),
    import('./stats-threads.js'),
  ]);
  // Every analysis copies what it keeps from a batch (the layer ranges' workers get a copy in shared memory), so
  // the batches can be read into one reused buffer: no fresh memory per batch to fault in and collect. Not with
  // logits: the LogitsThread scores a batch after add() has returned.
  const reader = openTrace(file);
  const stream = traceStream(reader, { reuse: reader.kind !== 'counts' && !reader.schema.hasLogits });
  try {
    if (stream.kind === 'counts') return await countStats(stream, file, flags);
    const schema = stream.schema;
    const L = schema.layers.length;
    if (flags.vocabLayer !== undefined && flags.vocabLayer >= L)
      throw new UserError(`--vocab-layer must be 0…${L - 1} (the trace has ${L} MoE layers), got ${flags.vocabLayer}`);
    const minE = Math.min(...schema.layers.map((_, l) => expertsAt(schema, l)));
    if (flags.devices !== undefined && flags.devices > minE)
      throw new UserError(`--devices ${flags.devices} is more than the ${minE} experts per layer`);
    const collapse: Partial<CollapseRules> = {};
    if (flags.warnHot !== undefined) collapse.hotShare = flags.warnHot;
    if (flags.warnEntropy !== undefined) collapse.minEntropy = flags.warnEntropy;
    if (flags.warnMaxvio !== undefined) collapse.maxVio = flags.warnMaxvio;
    if (flags.warnDrift !== undefined) collapse.drift = flags.warnDrift;
    // Layers that differ in E or K (src/core/shapes.ts) are analysed one shape at a time, each over its own E and K:
    // one analysis for a uniform trace, and the batches handed on untouched.
    const groups = shapeGroups(schema);
    const mixed = groups.length > 1;
    const analyses = groups.map((g) => {
      const vocab = flags.vocabLayer ?? L - 1;
      const at = g.positions.indexOf(vocab);
      const zeroExperts = g.positions.map((l) => stream.meta.routers[l]?.zeroExperts?.ids);
      const options = {
        ...defaultAnalysisOptions(g.schema),
        window: flags.window,
        collapse,
        capacityFactor: flags.capacityFactor,
        batchTokens: flags.batchTokens,
        biasRate: flags.biasRate,
        vocabLayer: at >= 0 ? at : null,
        zeroExperts,
      };
      // A large trace without logits: its layers in ranges over the cores (stats-threads.ts), the same output.
      // Zero-computation experts set each layer's collapse defaults from every layer's: such traces stay whole.
      const workers = zeroExperts.some((z) => z?.length) ? 0 : statsWorkers(g.schema, stream.tokens);
      if (workers > 0) return new SplitAnalysis(g.schema, options, workers);
      // This command owns its thread and draws nothing: large routers' logits are scored in a worker.
      return new TraceAnalysis(g.schema, { ...options, logits: logitsScorer(g.schema, true) });
    });
    try {
      for await (const b of tokenBatches(stream))
        for (let i = 0; i < analyses.length; i++) {
          const a = analyses[i]!;
          const gb = groupBatch(b, schema, groups[i]!);
          if (a instanceof SplitAnalysis) await a.add(gb);
          else a.add(gb);
        }
      const whole = analyses.filter((a): a is InstanceType<typeof TraceAnalysis> => a instanceof TraceAnalysis);
      if (whole.some((a) => a.wantsSecondPass))
        for (const c of stream.seek!.chunks(0))
          analyses.forEach((a, i) => {
            if (a instanceof TraceAnalysis && a.wantsSecondPass) a.route(groupBatch(c.batch, schema, groups[i]!));
          });
    } catch (e) {
      for (const a of analyses) if (a instanceof SplitAnalysis) a.close();
      throw e;
    }
    const balance = (E: number, loads: readonly ArrayLike<number>[]) => {
      if (flags.devices === undefined) return { balancedness: null };
      const { sglang, vllm, perLayer } = balancedness(loads, contiguousPlacement(E, flags.devices));
      return { balancedness: { devices: flags.devices, placement: 'contiguous', sglang, vllm, perLayer } };
    };
    const results = [];
    for (const analysis of analyses) {
      const E = analysis.schema.experts;
      if (analysis instanceof SplitAnalysis) {
        try {
          results.push(await analysis.result((loads) => balance(E, loads)));
        } finally {
          analysis.close();
        }
        continue;
      }
      const loads = analysis.schema.layers.map((_, l) => analysis.stats.load.subarray(l * E, (l + 1) * E));
      results.push(analysis.result(balance(E, loads)));
      analysis.stats.close();
    }
    const { complete, truncated: cut } = await stream.end();
    const tokens = stream.tokens!;
    const { flagTruncated, noteUnclosed } = await import('./truncation.js');
    flagTruncated(file, cut, tokens);
    const unclosed = noteUnclosed(file, { complete, truncated: cut, tokenCount: tokens });
    const unfollowed = stream.meta.routers.filter((r) => r.mixing === 'not-followed');
    const status = {
      truncated: cut !== null,
      closed: complete,
      // only when some router's weights were not followed to the mixing (the JSON is otherwise unchanged)
      ...(unfollowed.length
        ? { weightsNotFollowed: unfollowed.map((r) => ({ layer: r.layer, note: r.mixingNote ?? null })) }
        : {}),
    };
    if (flags.json) {
      // Mixed shapes: the whole trace's schema and tokens, then one stats document per shape (docs/metrics.md).
      const doc = mixed
        ? { version: results[0]!.version, tokens: results[0]!.tokens, schema, shapes: results, ...status }
        : { ...results[0]!, ...status };
      return JSON.stringify(doc, null, 2) + '\n';
    }
    const notes = [
      ...routerIdentityNote(stream.meta.routers),
      ...unfollowed.map(
        (r) =>
          `layer ${r.layer}: weights not followed to the mixing (${r.mixingNote ?? 'no reason recorded'}); its selection is the model's, its weights are NaN`,
      ),
    ];
    const truncatedNote = cut
      ? `trace cut short: ${cut.rowsLost ?? 'some'} rows lost at byte ${cut.atByte}; metrics cover the complete rows`
      : unclosed
        ? 'trace ended without being closed (no end-of-stream marker); metrics cover its complete batches'
        : null;
    if (!mixed) return formatStatsText(results[0]!, { file, model: stream.meta.model, notes, truncatedNote });
    const head = `moescope stats  ${file}: layers differ in experts/k (${describeLayerShapes(schema)}); one section per shape\n\n`;
    return (
      head +
      results
        .map((r, i) =>
          formatStatsText(r, {
            file: `${file} · layers ${groups[i]!.schema.layers.join(', ')}`,
            model: stream.meta.model,
            notes: i === 0 ? notes : [],
            truncatedNote,
          }),
        )
        .join('\n')
    );
  } finally {
    stream.close();
  }
}

/** `moescope stats` on a count trace: the metrics counts define, by the same formulas (stats/count-analysis.ts). */
async function countStats(
  stream: import('../core/routing-stream.js').RoutingStream,
  file: string,
  flags: StatsFlags,
): Promise<string> {
  const [{ CountAnalysis }, { formatCountStatsText }, { flagTruncated }] = await Promise.all([
    import('../stats/count-analysis.js'),
    import('../stats/count-text.js'),
    import('./truncation.js'),
  ]);
  const steps = stream.tokens!;
  const analysis = new CountAnalysis(stream.schema, stream.countInfo!, {
    totalSteps: steps,
    ...(flags.devices !== undefined ? { devices: flags.devices } : {}),
  });
  for await (const item of stream.items()) if (item.kind === 'counts') analysis.add(item.batch);
  const result = analysis.result();
  const cut = (await stream.end()).truncated;
  flagTruncated(file, cut, steps);
  if (flags.json) return JSON.stringify({ ...result, truncated: cut !== null }, null, 2) + '\n';
  return formatCountStatsText(result, {
    file,
    model: stream.meta.model,
    source: stream.meta.source,
    truncatedNote: cut
      ? `trace cut short: ${cut.rowsLost ?? 'some'} rows lost at byte ${cut.atByte}; metrics cover the complete rows`
      : null,
  });
}

/** `moescope stats` on a dataset: counted by an engine, measured by the count-trace formulas (docs/scale.md). */
async function datasetStats(arg: string, flags: StatsFlags): Promise<string> {
  const [{ countDatasetArg }, { CountAnalysis }, { formatCountStatsText }] = await Promise.all([
    import('./dataset-action.js'),
    import('../stats/count-analysis.js'),
    import('../stats/count-text.js'),
  ]);
  const [{ shapeGroups, groupCounts }, { describeLayerShapes }] = await Promise.all([
    import('../core/shapes.js'),
    import('../core/batch.js'),
  ]);
  const c = await countDatasetArg(arg, flags);
  const { ds, table } = c;
  const batch = table.toBatch();
  // Layers that differ in E or K (src/core/shapes.ts): one analysis per shape, each over its layers' own experts.
  const groups = shapeGroups(ds.schema);
  // Logits sums: one record per shape group (the engine sums each over its layers' own E and K), in this order.
  const { datasetHasLogits, datasetLogitSums } = await import('../scale/logit-engine.js');
  const withLogits = flags.logitSums !== false && datasetHasLogits(ds);
  const t0 = performance.now();
  const logits = withLogits ? await datasetLogitSums(ds, c.engine, flags) : null;
  const logitSeconds = (performance.now() - t0) / 1000;
  const results = groups.map((g, i) => {
    const analysis = new CountAnalysis(
      g.schema,
      { axis: 'expert', bins: g.schema.experts, topKKnown: true },
      {
        totalSteps: batch.length,
        ...(flags.devices !== undefined ? { devices: flags.devices } : {}),
        ...(logits ? { logits: logits[i]! } : {}),
      },
    );
    if (batch.length) analysis.add(groupCounts(batch, ds.schema, g));
    return analysis.result();
  });
  const tokens = ds.files.reduce((a, f) => a + f.rows, 0);
  const dataset = {
    engine: c.engine,
    files: ds.files.map((f) => ({ path: f.path, format: f.format, tokens: f.rows })),
    tokens,
    stepWindow: flags.stepWindow ?? 1,
    skipped: ds.skipped,
    notes: ds.notes,
    /** Whether the logits metrics were summed by the engine (every file has logits, no --no-logit-sums). */
    logitSums: logits !== null,
  };
  const mixed = groups.length > 1;
  if (flags.json) {
    const doc = mixed ? { schema: ds.schema, shapes: results, dataset } : { ...results[0]!, dataset };
    return JSON.stringify(doc, null, 2) + '\n';
  }
  const parquet = ds.files.filter((f) => f.format === 'parquet').length;
  const text = (i: number) =>
    formatCountStatsText(results[i]!, {
      file: mixed ? `${arg} · layers ${groups[i]!.schema.layers.join(', ')}` : arg,
      model: ds.meta.model,
      source: ds.meta.source,
      truncatedNote: null,
      subject: `dataset of ${ds.files.length} files (${parquet} Parquet, ${ds.files.length - parquet} Arrow), counted by ${c.engine} in ${c.seconds.toFixed(2)} s${logits ? ` (logits summed in ${logitSeconds.toFixed(2)} s)` : ''}, ${dataset.stepWindow === 1 ? 'one row per step' : `rows of ${dataset.stepWindow} steps`}`,
      extra: [...ds.skipped.map((s) => `skipped ${s.reason}`), ...ds.notes.filter((n) => !n.includes('(--skip-bad)'))],
    });
  if (!mixed) return text(0);
  return (
    `moescope stats  ${arg}: layers differ in experts/k (${describeLayerShapes(ds.schema)}); one section per shape\n\n` +
    groups.map((_, i) => text(i)).join('\n')
  );
}

/** When several routers share a model layer (JetMoE: attention and MLP routers), which router each stream layer is. */
function routerIdentityNote(routers: import('../core/stream.js').RouterSummary[]): string[] {
  const differs = routers.some(
    (r) =>
      (r.role !== undefined && r.role !== 'mlp') ||
      (r.modelLayer !== undefined && r.modelLayer !== null && r.modelLayer !== r.layer),
  );
  if (!differs) return [];
  return [`routers: ${routers.map((r) => `${r.layer} = layer ${r.modelLayer ?? '?'} ${r.role ?? 'mlp'}`).join(', ')}`];
}
