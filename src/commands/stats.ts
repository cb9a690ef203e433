import type { Command } from 'commander';
import { DEFAULT_COLLAPSE_WINDOW } from '../stats/defaults.js';
import { floatArg, intArg } from './options.js';
import type { CollapseRules } from '../stats/collapse.js';

interface StatsFlags {
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
}

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description('balance metrics of a trace, each labelled with its framework convention (docs/metrics.md)')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .option('--json', 'print the stable JSON form (docs/metrics.md § The stats JSON)')
    .option('--devices <d>', 'balancedness over D devices (contiguous placement)', intArg('--devices', 1))
    .option('--window <w>', 'sliding window in tokens for collapse detection (0 = off; default 512, as in report and the TUI)', intArg('--window', 0), DEFAULT_COLLAPSE_WINDOW)
    .option('--capacity-factor <cf>', 'capacity factor of the capacity simulation', floatArg('--capacity-factor', 0), 1.25)
    .option('--batch-tokens <n>', 'tokens per simulated batch (capacity, loss-free bias updates)', intArg('--batch-tokens', 1), 4096)
    .option('--bias-rate <u>', 'bias update rate of the DeepSeek loss-free replay', floatArg('--bias-rate', 0), 0.001)
    .option('--vocab-layer <i>', 'MoE layer index (0-based) for vocabulary specialisation (default: last)', intArg('--vocab-layer', 0))
    .option('--warn-hot <share>', 'hot-expert threshold: share of a layer\'s assignments (default 3/E)', floatArg('--warn-hot', 0))
    .option('--warn-entropy <h>', 'low load-entropy threshold, normalised (default 0.8)', floatArg('--warn-entropy', 0))
    .option('--warn-maxvio <v>', 'MaxVio threshold (default 1.5)', floatArg('--warn-maxvio', 0))
    .option('--warn-drift <bits>', 'drift threshold, JS divergence from the first window in bits (default 0.05)', floatArg('--warn-drift', 0))
    .action(async (file: string, flags: StatsFlags) => {
      const out = await runStats(file, flags);
      const { printJson, printText } = await import('../core/sanitize.js');
      if (flags.json) printJson(out);
      else printText(out);
    })
    .addHelpText('after', '\nA trace cut short is analysed over its complete tokens, then reported on stderr with exit code 2.');
}

/** `moescope stats`: trace reader → stats accumulators → JSON or text (stats never imports trace; this composes them). */
async function runStats(file: string, flags: StatsFlags): Promise<string> {
  const [{ openTrace }, { TraceAnalysis, defaultAnalysisOptions }, { formatStatsText }, { balancedness }, { contiguousPlacement }, { UserError }, { logitsScorer }] =
    await Promise.all([
      import('../trace/index.js'),
      import('../stats/analysis.js'),
      import('../stats/text.js'),
      import('../stats/balancedness.js'),
      import('../stats/placement.js'),
      import('../core/errors.js'),
      import('../stats/logits-thread.js'),
    ]);
  const trace = openTrace(file);
  try {
    if (trace.kind === 'counts') return await countStats(trace, file, flags);
    const schema = trace.schema;
    const L = schema.layers.length;
    if (flags.vocabLayer !== undefined && flags.vocabLayer >= L)
      throw new UserError(`--vocab-layer must be 0…${L - 1} (the trace has ${L} MoE layers), got ${flags.vocabLayer}`);
    if (flags.devices !== undefined && flags.devices > schema.experts)
      throw new UserError(`--devices ${flags.devices} is more than the ${schema.experts} experts per layer`);
    const collapse: Partial<CollapseRules> = {};
    if (flags.warnHot !== undefined) collapse.hotShare = flags.warnHot;
    if (flags.warnEntropy !== undefined) collapse.minEntropy = flags.warnEntropy;
    if (flags.warnMaxvio !== undefined) collapse.maxVio = flags.warnMaxvio;
    if (flags.warnDrift !== undefined) collapse.drift = flags.warnDrift;
    const analysis = new TraceAnalysis(schema, {
      ...defaultAnalysisOptions(schema),
      window: flags.window,
      collapse,
      capacityFactor: flags.capacityFactor,
      batchTokens: flags.batchTokens,
      biasRate: flags.biasRate,
      ...(flags.vocabLayer !== undefined ? { vocabLayer: flags.vocabLayer } : {}),
      // This command owns its thread and draws nothing: large routers' logits are scored in a worker.
      logits: logitsScorer(schema, true),
    });
    for (const b of trace.batches()) analysis.add(b);
    if (analysis.wantsSecondPass) for (const b of trace.batches()) analysis.route(b);
    let extra = {};
    if (flags.devices !== undefined) {
      const E = schema.experts;
      const loads = Array.from({ length: L }, (_, l) => analysis.stats.load.subarray(l * E, (l + 1) * E));
      const { sglang, vllm, perLayer } = balancedness(loads, contiguousPlacement(E, flags.devices));
      extra = { balancedness: { devices: flags.devices, placement: 'contiguous', sglang, vllm, perLayer } };
    } else extra = { balancedness: null };
    const result = analysis.result(extra);
    analysis.stats.close();
    const cut = trace.truncated;
    const { flagTruncated, noteUnclosed } = await import('./truncation.js');
    flagTruncated(file, cut, trace.tokenCount);
    const unclosed = noteUnclosed(file, trace);
    if (flags.json) return JSON.stringify({ ...result, truncated: cut !== null, closed: trace.complete }, null, 2) + '\n';
    return formatStatsText(result, {
      file,
      model: trace.meta.model,
      truncatedNote: cut
        ? `trace cut short: ${cut.rowsLost ?? 'some'} rows lost at byte ${cut.atByte}; metrics cover the complete rows`
        : unclosed
          ? 'trace ended without being closed (no end-of-stream marker); metrics cover its complete batches'
          : null,
    });
  } finally {
    trace.close();
  }
}

/** `moescope stats` on a count trace: the metrics counts define, by the same formulas (stats/count-analysis.ts). */
async function countStats(trace: import('../trace/index.js').TraceReader, file: string, flags: StatsFlags): Promise<string> {
  const [{ CountAnalysis }, { formatCountStatsText }, { flagTruncated }] = await Promise.all([
    import('../stats/count-analysis.js'),
    import('../stats/count-text.js'),
    import('./truncation.js'),
  ]);
  const info = trace.countInfo!;
  const analysis = new CountAnalysis(trace.schema, info, {
    totalSteps: trace.rowCount,
    ...(flags.devices !== undefined ? { devices: flags.devices } : {}),
  });
  for (const b of trace.countBatches()) analysis.add(b);
  const result = analysis.result();
  const cut = trace.truncated;
  flagTruncated(file, cut, trace.rowCount);
  if (flags.json) return JSON.stringify({ ...result, truncated: cut !== null }, null, 2) + '\n';
  return formatCountStatsText(result, {
    file,
    model: trace.meta.model,
    source: trace.meta.source,
    truncatedNote: cut ? `trace cut short: ${cut.rowsLost ?? 'some'} rows lost at byte ${cut.atByte}; metrics cover the complete rows` : null,
  });
}
