import type { Command } from 'commander';
import { registerCheck } from './check.js';
import { registerDash } from './dash.js';
import { registerDemo } from './demo.js';
import { registerDiff } from './diff.js';
import { registerExport } from './export.js';
import { registerImport } from './import.js';
import { registerInspect } from './inspect.js';
import { registerInstrument } from './instrument.js';
import { registerListen } from './listen.js';
import { registerMerge } from './merge.js';
import { registerPlan } from './plan.js';
import { registerReplay } from './replay.js';
import { registerReport } from './report.js';
import { registerRun } from './run.js';
import { registerStats } from './stats.js';
import { registerSynth } from './synth.js';
import { registerWatch } from './watch.js';

/** Every subcommand, in the order --help lists them. */
export function registerCommands(program: Command): void {
  registerDemo(program);
  registerRun(program);
  registerWatch(program);
  registerReplay(program);
  registerListen(program);
  registerDash(program);
  registerInspect(program);
  registerInstrument(program);
  registerStats(program);
  registerCheck(program);
  registerDiff(program);
  registerReport(program);
  registerPlan(program);
  registerImport(program);
  registerExport(program);
  registerMerge(program);
  registerSynth(program);
}
