/**
 * Capture overhead: tokens/s of the demo model (tiny-moe, KV-cache decode, greedy) with and without
 * instrumentation, measured in one run.
 *
 *   baseline        the model as exported: no router outputs, no batches
 *   capture         router ids + weights exposed, read back, a RoutingBatch built per token (what `run` does)
 *   capture+logits  the same with router logits
 *
 * The three variants decode the same prompt in lockstep — one step of each in turn, the order rotating every
 * step — so load from other processes on a shared machine hits all of them alike. A step is what the generation
 * loop does per token: sample, decode the text, run the forward pass, read the router outputs, build the batch.
 * tok/s = 1000 / median step time over every step of every repetition; ratios are against the baseline.
 * Goal: capture overhead ≤ 5%.
 *
 *   node dist/bench/engine.js [--reps 10] [--tokens 64] [--threads 1] [--model PATH]
 */
import { BUNDLED_MODEL, BUNDLED_PROMPTS } from '../src/core/paths.js';
import { batchFromRows, sampleToken } from '../src/engine/generation-loop.js';
import { loadPrompts } from '../src/engine/prompts.js';
import { ModelRunner, type SequenceState } from '../src/engine/runner.js';

interface Args {
  reps: number;
  tokens: number;
  threads: number;
  model: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { reps: 10, tokens: 64, threads: 1, model: BUNDLED_MODEL };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1] ?? '';
    if (argv[i] === '--reps') a.reps = Number(v);
    else if (argv[i] === '--tokens') a.tokens = Number(v);
    else if (argv[i] === '--threads') a.threads = Number(v);
    else if (argv[i] === '--model') a.model = v;
  }
  return a;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Variant {
  name: string;
  runner: ModelRunner;
  steps: number[];
  st: SequenceState;
  logits: Float32Array;
  generated: number[];
  batches: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const prompt = loadPrompts(BUNDLED_PROMPTS)[0]!;
  const open = async (name: string, o: { instrument?: boolean; logits?: boolean }): Promise<Variant> => {
    const runner = await ModelRunner.open({ model: args.model, threads: args.threads, ...o });
    return {
      name,
      runner,
      steps: [],
      st: runner.newSequence(),
      logits: new Float32Array(0),
      generated: [],
      batches: 0,
    };
  };
  const variants = [
    await open('baseline', { instrument: false }),
    await open('capture', {}),
    await open('capture+logits', { logits: true }),
  ];
  const ids = variants[0]!.runner.codec.encode(prompt.text!);

  const step = async (v: Variant, pos: number) => {
    const t0 = performance.now();
    const next = sampleToken(v.logits, 0, Math.random);
    v.generated.push(next);
    v.runner.codec.decode(v.generated);
    const out = await v.runner.forward(v.st, [next]);
    v.logits = out.logits;
    if (out.rows) {
      batchFromRows(out.rows, 0, pos, [next], false, null, v.runner.codec);
      v.batches++;
    }
    v.steps.push(performance.now() - t0);
  };

  for (let rep = -1; rep < args.reps; rep++) {
    for (const v of variants) {
      v.st = v.runner.newSequence();
      v.generated = [];
      v.logits = (await v.runner.forward(v.st, ids)).logits;
    }
    const before = variants.map((v) => v.steps.length);
    for (let t = 0; t < args.tokens; t++) {
      for (let i = 0; i < variants.length; i++)
        await step(variants[(t + i + rep + 1) % variants.length]!, ids.length + t);
    }
    if (rep < 0) variants.forEach((v, i) => v.steps.splice(before[i]!)); // warm-up round: not counted
  }
  const same = variants.every((v) => v.generated.join() === variants[0]!.generated.join());
  const base = 1000 / median(variants[0]!.steps);
  process.stdout.write(
    `engine capture overhead — ${args.model.replace(/.*fixtures\//, 'fixtures/')}: ${args.reps} reps × ${args.tokens} decode steps per variant, lockstep, ${args.threads} thread(s)\n`,
  );
  for (const v of variants) {
    const r = 1000 / median(v.steps);
    const ratio = r / base;
    process.stdout.write(
      `  ${v.name.padEnd(15)} ${r.toFixed(1).padStart(8)} tok/s  ratio ${ratio.toFixed(3)}  overhead ${((1 / ratio - 1) * 100).toFixed(1).padStart(5)}%  (${v.batches} batches)\n`,
    );
  }
  process.stdout.write(
    `  greedy tokens identical across variants: ${same ? 'yes' : 'NO'}; goal: capture overhead ≤ 5%\n`,
  );
  for (const v of variants) await v.runner.close();
}

await main();
