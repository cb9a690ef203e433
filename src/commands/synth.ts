import type { Command } from 'commander';
import { choiceArg, intArg } from './options.js';

interface SynthFlags {
  output: string;
  layers: number;
  experts: number;
  topK: number;
  tokens: number;
  skew: string;
  collapse?: string;
  logits?: boolean;
  seed: number;
  scoring: 'softmax' | 'sigmoid';
  rank?: number;
  stepTokens?: number;
}

export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description('write a synthetic trace at any scale with controlled skew and planted collapse')
    .requiredOption('-o, --output <trace>', 'trace to write (.arrows)')
    .option('--layers <l>', 'MoE layers (ids 0…L-1)', intArg('--layers', 1), 4)
    .option('--experts <e>', 'experts per layer', intArg('--experts', 1), 8)
    .option('--top-k <k>', 'experts per token', intArg('--top-k', 1), 2)
    .option('--tokens <n>', 'tokens', intArg('--tokens', 1), 10000)
    .option('--skew <spec>', 'expert popularity per layer: uniform or zipf:S (p ∝ rank^-S)', 'uniform')
    .option('--collapse <spec>', 'plant a collapse: layer=I,expert=J,from=F (F = fraction of the run)')
    .option('--logits', 'include router logits (the selection is their top-k)')
    .option('--scoring <s>', 'softmax or sigmoid', choiceArg('--scoring', ['softmax', 'sigmoid'] as const), 'softmax')
    .option('--seed <s>', 'random seed (same seed, same routing)', intArg('--seed', 0), 0)
    .option('--rank <r>', 'add a rank column holding R (one rank of a multi-process run)', intArg('--rank', 0, 65535))
    .option('--step-tokens <t>', 'add a step column: T tokens per training step', intArg('--step-tokens', 1))
    .action(async (o: SynthFlags) => {
      const { synthesizeInterruptible, parseSkew, parseCollapse } = await import('../trace/synth.js');
      const { describeSchema } = await import('../core/batch.js');
      const t0 = performance.now();
      const r = await synthesizeInterruptible(o.output, {
        layers: o.layers,
        experts: o.experts,
        topK: o.topK,
        tokens: o.tokens,
        skew: parseSkew(o.skew),
        collapse: o.collapse ? parseCollapse(o.collapse, o.layers, o.experts) : null,
        logits: o.logits ?? false,
        scoring: o.scoring,
        seed: o.seed,
        rank: o.rank ?? null,
        stepTokens: o.stepTokens ?? null,
      });
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      (await import('../core/sanitize.js')).printText(
        `wrote ${o.output}: ${r.tokens} tokens, ${describeSchema(r.schema)}, ${(r.bytes / 2 ** 20).toFixed(1)} MiB in ${s} s\n`,
      );
    });
}
