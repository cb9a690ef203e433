/**
 * `moescope --help` cold start against a bare `node -e 0` started the same way, interleaved.
 *
 *   node dist/bench/cold-start.js [--runs 20] [--json]
 *
 * Each run spawns a fresh process and waits for it to exit (wall time from spawn to exit, stdout captured), the
 * two commands alternating with the order rotating every round; the first round is a warm-up (page cache).
 * Prints median (min–max) of both and the difference — what moescope itself adds to Node's own start.
 * Fails when `--help` does not exit 0 with the usage text.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  BENCH_DIR,
  flag,
  fmtSummary,
  interleave,
  isMain,
  numArg,
  runChild,
  summarise,
  type Summary,
} from './common.js';

export interface ColdStartResult {
  runs: number;
  node: Summary;
  help: Summary;
  /** Per-round difference help − node, ms. */
  added: Summary;
  cli: string;
}

export function coldStart(runs: number): ColdStartResult {
  const cli = join(BENCH_DIR, '..', 'bin', 'moescope.js'); // the bundle: what the moescope bin runs
  if (!existsSync(cli)) throw new Error(`${cli} not built`);
  const cmds: string[][] = [
    ['-e', '0'],
    [cli, '--help'],
  ];
  const ms = interleave(['node -e 0', 'moescope --help'], runs, (v) => {
    const r = runChild(process.execPath, cmds[v]!, { env: { ...process.env, NODE_OPTIONS: '' } });
    if (r.status !== 0 || (v === 1 && !r.stdout.includes('Usage: moescope')))
      throw new Error(`${cmds[v]!.join(' ')} failed (exit ${r.status}): ${r.stderr.trim().split('\n').pop() ?? ''}`);
    return r.ms;
  });
  const [node, help] = ms as [number[], number[]];
  return {
    runs,
    node: summarise(node),
    help: summarise(help),
    added: summarise(help.map((h, i) => h - node[i]!)),
    cli,
  };
}

function main(): void {
  const r = coldStart(numArg(process.argv, '--runs', 20));
  console.log(`cold start, ${r.runs} interleaved runs each:`);
  console.log(`  node -e 0         ${fmtSummary(r.node, 0, ' ms')}`);
  console.log(`  moescope --help   ${fmtSummary(r.help, 0, ' ms')}   goal ≤ 300 ms`);
  console.log(`  added by moescope ${fmtSummary(r.added, 0, ' ms')}`);
  if (flag(process.argv, '--json')) console.log(JSON.stringify(r));
}

if (isMain(import.meta.url)) main();
