/**
 * The actions behind `moescope check` and `moescope diff`: parse inputs, run, print in the chosen format,
 * and set the exit code (0 pass, 1 a limit broken; bad input throws a UserError → 2).
 */
import { UserError } from '../core/errors.js';
import { resolveOutput, writeOutputFile } from '../core/output.js';
import { printJson, printText } from '../core/sanitize.js';
import { formatResult, type Format } from '../report/result-formats/index.js';
import { summaryLine } from '../report/result-formats/verdicts.js';
import type { RoutingStream } from '../core/routing-stream.js';
import { runCheck } from '../gate/check.js';
import { loadConfig, needsLogits, withDiffFlags, withFlags, type ThresholdFlags } from '../gate/config.js';
import { runDiff } from '../gate/diff.js';
import { routingSource } from './dataset-action.js';
import type { DatasetFlags } from './options.js';
import type { GateResult } from '../gate/verdict.js';

export interface OutputOptions {
  format: Format;
  output?: string;
}

export interface CheckOptions extends ThresholdFlags, OutputOptions, DatasetFlags {
  minBalancedness?: number;
  model?: string;
  prompts?: string;
  maxTokens?: number;
  config?: string;
}

export interface DiffOptions extends OutputOptions, DatasetFlags {
  config?: string;
  maxDrift?: number;
  maxTv?: number;
  minAgreement?: number;
  layers?: number[];
}

/** Prints (or writes) the result and returns the exit code. */
function emit(r: GateResult, o: OutputOptions, inputs: readonly string[]): number {
  const text = formatResult(r, o.format);
  if (o.output) {
    writeOutputFile(o.output, text, { inputs, what: '--output' });
    printText(
      `moescope ${r.command}: ${r.passed ? 'PASS' : 'FAIL'}, ${summaryLine(r)} (${o.format} written to ${o.output})\n`,
    );
  } else if (o.format === 'json') {
    printJson(text);
  } else {
    printText(text);
  }
  return r.passed ? 0 : 1;
}

async function checkSource(trace: string | undefined, o: CheckOptions, wantLogits: boolean): Promise<RoutingStream> {
  if (trace !== undefined && o.maxTokens !== undefined) throw new UserError('--max-tokens applies to --model only');
  if (trace !== undefined && (o.model !== undefined || o.prompts !== undefined))
    throw new UserError('give either a TRACE or --model with --prompts, not both');
  if (trace !== undefined) return routingSource(trace, o);
  if (o.model === undefined) throw new UserError('nothing to check: give a TRACE, or --model MODEL --prompts FILE');
  if (o.prompts === undefined) throw new UserError('--model needs --prompts FILE (the prompts to route)');
  const { modelSource } = await import('../gate/model-source.js');
  return modelSource(o.model, o.prompts, { maxTokens: o.maxTokens ?? 0, logits: wantLogits });
}

/** `check` on a balancedness series from a server log: only --min-balancedness applies. */
async function checkSeriesCommand(trace: string, o: CheckOptions): Promise<number> {
  const { readSeriesTrace } = await import('../trace/series.js');
  const { checkSeries } = await import('../gate/series-check.js');
  const { RULES } = await import('../gate/rules.js');
  for (const r of RULES)
    if ((o as unknown as Record<string, unknown>)[r.key] !== undefined)
      throw new UserError(
        `${trace} holds a balancedness series (no per-expert loads): ${r.flag} does not apply; use --min-balancedness`,
      );
  if (o.layers !== undefined || o.config !== undefined)
    throw new UserError(`${trace} holds a balancedness series: --layers and --config do not apply`);
  if (o.minBalancedness === undefined)
    throw new UserError(`${trace} holds a balancedness series: give --min-balancedness X`);
  if (o.minBalancedness > 1)
    throw new UserError(`--min-balancedness must be between 0 and 1, got ${o.minBalancedness}`);
  return emit(checkSeries(trace, readSeriesTrace(trace), o.minBalancedness), o, [trace]);
}

export async function checkCommand(trace: string | undefined, o: CheckOptions): Promise<number> {
  if (trace !== undefined) {
    const { traceKind } = await import('../trace/series.js');
    const { isDatasetArg } = await import('../scale/inputs.js');
    if (!isDatasetArg(trace) && traceKind(trace) === 'series') return checkSeriesCommand(trace, o);
  }
  if (o.minBalancedness !== undefined)
    throw new UserError(
      '--min-balancedness reads a balancedness series (`moescope import log`); for tokens or counts, `moescope plan` gives balancedness per placement',
    );
  // Validate the config and flags before opening anything, so usage errors come first.
  const cfg = withFlags(loadConfig(o.config), o);
  const inputs = [trace, o.model, o.prompts, o.config].filter((p): p is string => p !== undefined);
  if (o.output) resolveOutput(o.output, inputs, '--output'); // refuse before the (possibly long) run
  const source = await checkSource(trace, o, needsLogits(cfg));
  try {
    const r = await runCheck(source, cfg, { threads: true });
    return emit(r, o, inputs);
  } finally {
    source.close();
  }
}

export async function diffCommand(base: string, next: string, o: DiffOptions): Promise<number> {
  const cfg = withDiffFlags(loadConfig(o.config), o);
  const inputs = [base, next, o.config].filter((p): p is string => p !== undefined);
  if (o.output) resolveOutput(o.output, inputs, '--output');
  const a = await routingSource(base, o);
  try {
    const b = await routingSource(next, o);
    try {
      return emit(await runDiff(a, b, cfg), o, inputs);
    } finally {
      b.close();
    }
  } finally {
    a.close();
  }
}
