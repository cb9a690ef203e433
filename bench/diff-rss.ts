/**
 * Peak memory and time of `moescope diff BASE NEW` at DeepSeek-V3 scale (58 MoE layers × 256 experts, top-8):
 * two synthetic traces of N tokens (default 250,000, 452 MiB each) with the same tokens and a collapse planted
 * in the new one halfway (so half the tokens pair up for router agreement and the loads drift).
 *
 *   node dist/bench/diff-rss.js [--tokens N] [--rounds 3] [--old DIST] [--disjoint] [--json]
 *
 * --disjoint: the new trace's odd sequences get other ids (seq + 2^31), so half the sequences of each trace are in
 * that trace only — their tokens wait for a partner to the end (held in memory before, spilled past
 * MOESCOPE_DIFF_HOLD_MIB since; docs/ci.md).
 *
 * Whole commands as users run them, each in its own process, its peak RSS read by an exit hook (--import) from
 * process.resourceUsage(). Rounds interleave, order rotating: `diff` (two traces, one pass each), `stats BASE
 * --json` (the peer: one streaming pass over one trace, the floor of what reading costs) and, with --old DIST, the
 * same `diff` from another build's dist/ (e.g. a copy of main's, for before/after in the same run; its JSON
 * output must equal ours). Goal: peak RSS < 512 MiB, like streaming one trace (bench row 6).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesize, type SynthSpec } from '../src/trace/synth.js';
import { openTrace } from '../src/trace/index.js';
import { TraceWriter } from '../src/trace/writer.js';
import {
  cached,
  flag,
  fmtInt,
  fmtSummary,
  interleave,
  isMain,
  loadLine,
  machineLine,
  numArg,
  strArg,
  summarise,
  type Summary,
} from './common.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
/** Prints the process's peak RSS (KiB) to the file named in MOESCOPE_BENCH_RSS when it exits. */
const HOOK =
  'data:text/javascript,import{writeFileSync}from"node:fs";' +
  'process.on("exit",()=>writeFileSync(process.env.MOESCOPE_BENCH_RSS,String(process.resourceUsage().maxRSS)))';

export interface DiffRssResult {
  tokens: number;
  traceMiB: number;
  variants: { name: string; rssMiB: Summary; ms: Summary }[];
  identicalTokens: number | null;
  /** --old's JSON equals ours (null without --old). */
  sameAsOld: boolean | null;
  goalMiB: number;
  met: boolean;
  load: string;
}

function spec(tokens: number, collapse: boolean): SynthSpec {
  return {
    layers: 58,
    experts: 256,
    topK: 8,
    tokens,
    skew: { kind: 'zipf', s: 1.1 },
    collapse: collapse ? { layer: 10, expert: 7, from: 0.5 } : null,
    logits: false,
    seed: 21,
  };
}

/** `from` with its odd sequences renamed (seq + 2^31): those are in this trace only. */
function renameOdd(from: string, to: string): void {
  const t = openTrace(from);
  const w = TraceWriter.create(to, { schema: t.schema, meta: t.meta, atomic: true });
  try {
    for (const b of t.batches()) {
      for (let i = 0; i < b.length; i++) if (b.seq[i]! % 2 === 1) b.seq[i] = b.seq[i]! + 2 ** 31;
      w.write(b);
    }
    w.close();
  } finally {
    t.close();
  }
}

function main(): void {
  const argv = process.argv.slice(2);
  const tokens = numArg(argv, '--tokens', 250_000);
  const rounds = numArg(argv, '--rounds', 3);
  const old = strArg(argv, '--old');
  if (old && !existsSync(join(old, 'src/cli.js')))
    throw new Error(`--old ${old}: no src/cli.js there (give a dist/ folder)`);
  const traces = [false, true].map(
    (c) =>
      cached(
        `moescope-bench-diff-${tokens}-${c ? 'new' : 'base'}.arrows`,
        spec(tokens, c),
        (p) => synthesize(p, spec(tokens, c)),
        () => true,
      ).path,
  );
  const disjoint = flag(argv, '--disjoint');
  const [base, synthNext] = traces as [string, string];
  const next = disjoint
    ? cached(
        `moescope-bench-diff-${tokens}-new-disjoint.arrows`,
        { ...spec(tokens, true), renamed: 'odd sequences + 2^31' },
        (p) => renameOdd(synthNext, p),
        () => true,
      ).path
    : synthNext;
  const tmp = mkdtempSync(join(tmpdir(), 'moescope-diff-rss-'));
  const rssFile = join(tmp, 'rss');
  const variants: { name: string; cli: string; args: string[] }[] = [
    { name: 'diff', cli: CLI, args: ['diff', base, next, '--format', 'json'] },
    { name: 'stats (one trace)', cli: CLI, args: ['stats', base, '--json'] },
  ];
  if (old)
    variants.push({
      name: 'diff, --old build',
      cli: join(old, 'src/cli.js'),
      args: ['diff', base, next, '--format', 'json'],
    });
  const outputs = new Map<string, string>();
  try {
    const runs = interleave(
      variants.map((v) => v.name),
      rounds,
      (i) => {
        const v = variants[i]!;
        const t0 = performance.now();
        const r = spawnSync(process.execPath, ['--import', HOOK, v.cli, ...v.args], {
          encoding: 'utf8',
          maxBuffer: 64 * 2 ** 20,
          env: { ...process.env, MOESCOPE_BENCH_RSS: rssFile },
        });
        const ms = performance.now() - t0;
        if (r.status !== 0)
          throw new Error(`${v.name} exited ${r.status}: ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`);
        outputs.set(v.name, r.stdout);
        return { rssMiB: Number(readFileSync(rssFile, 'utf8')) / 1024, ms };
      },
      false,
    );
    const diffJson = JSON.parse(outputs.get('diff')!) as { identicalTokens?: number };
    const res: DiffRssResult = {
      tokens,
      traceMiB: statSync(base).size / 2 ** 20,
      variants: variants.map((v, i) => ({
        name: v.name,
        rssMiB: summarise(runs[i]!.map((x) => x.rssMiB)),
        ms: summarise(runs[i]!.map((x) => x.ms)),
      })),
      identicalTokens: diffJson.identicalTokens ?? null,
      sameAsOld: old ? outputs.get('diff') === outputs.get('diff, --old build') : null,
      goalMiB: 512,
      met: false,
      load: loadLine(),
    };
    res.met = res.variants[0]!.rssMiB.median < res.goalMiB;
    console.log(
      `diff of two ${fmtInt(tokens)}-token traces (58 × 256, top-8, ${res.traceMiB.toFixed(0)} MiB each${disjoint ? '; half the sequences in one trace only' : ''}); ${machineLine()}; ${res.load}`,
    );
    for (const v of res.variants)
      console.log(
        `  ${v.name.padEnd(20)} peak RSS ${fmtSummary(v.rssMiB, 0, ' MiB')}   wall ${fmtSummary(v.ms, 0, ' ms')}`,
      );
    console.log(`  identical tokens paired: ${res.identicalTokens === null ? '?' : fmtInt(res.identicalTokens)}`);
    if (res.sameAsOld !== null)
      console.log(`  --old build's JSON output equal to ours: ${res.sameAsOld ? 'yes' : 'NO'}`);
    console.log(`  goal: diff peak RSS < ${res.goalMiB} MiB — ${res.met ? 'met' : 'MISSED'}`);
    if (flag(argv, '--json')) console.log(JSON.stringify(res));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) main();
