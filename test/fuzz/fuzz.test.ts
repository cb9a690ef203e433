/**
 * Fuzz: hundreds of seeded mutants of every input format (test/fuzz/targets.ts) through the real CLI code
 * (in-process, in a worker with a heap limit). Every case must end with exit 0, 1 or 2; on 2 with exactly one
 * error line `moescope: …` (notes aside), short, with no stack; within the time and memory limits. A failing case
 * prints its target, number, argv and the mutant's path (kept): rerun with FUZZ_ONLY=target:case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Rng } from '../../src/trace/rng.js';
import { mutateBinary, mutateText } from './mutate.js';
import { TARGETS, writeSeed, writeSeedTrace, type FuzzContext } from './targets.js';

/** Cases per target (FUZZ_CASES overrides, e.g. 5000 for a long campaign). */
const CASES = Number(process.env.FUZZ_CASES ?? 60);
const CASE_MS = 10_000;
const RSS_LIMIT = 1.5 * 2 ** 30;
const HEAP_MB = 768;

interface Reply {
  id: number;
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  rss: number;
}

/** One worker at a time; a reply counts only for the case it answers (a killed worker's late messages are dropped). */
class Runner {
  private worker: Worker | null = null;
  private pending: { id: number; resolve: (r: Reply | string) => void } | null = null;

  private start(): Worker {
    const w = new Worker(new URL('./worker.js', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: HEAP_MB },
      stdout: true,
      stderr: true,
    });
    w.on('message', (r: Reply) => {
      if (this.worker === w && this.pending?.id === r.id) this.settle(r);
    });
    w.on('error', (e) => {
      if (this.worker === w) this.settle(`worker died: ${e.message}`);
    });
    w.on('exit', (c) => {
      if (this.worker === w) this.settle(`worker exited with ${c}`);
    });
    this.worker = w;
    return w;
  }

  private settle(r: Reply | string): void {
    const p = this.pending;
    this.pending = null;
    if (typeof r === 'string') this.drop();
    p?.resolve(r);
  }

  private drop(): void {
    const w = this.worker;
    this.worker = null;
    void w?.terminate();
  }

  run(id: number, argv: string[]): Promise<Reply | string> {
    const w = this.worker ?? this.start();
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => this.settle(`no answer within ${CASE_MS} ms (hang or runaway allocation)`),
        CASE_MS,
      );
      this.pending = {
        id,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      w.postMessage({ id, argv });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    await w?.terminate();
  }
}

/** What is wrong with a reply, or null. */
export function judge(r: Reply | string): string | null {
  if (typeof r === 'string') return r;
  if (![0, 1, 2].includes(r.code)) return `exit ${r.code}: ${r.stderr.slice(0, 600)}`;
  if (/\n\s+at |internal error|uncaught/.test(r.stderr)) return `a stack or internal error: ${r.stderr.slice(0, 600)}`;
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  if (lines.some((l) => !l.startsWith('moescope: ')))
    return `stderr line without "moescope: ": ${r.stderr.slice(0, 600)}`;
  if (lines.some((l) => l.length > 420)) return `stderr line of ${Math.max(...lines.map((l) => l.length))} chars`;
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(r.stderr + r.stdout))
    return 'raw control characters in the output';
  const errors = lines.filter((l) => !l.startsWith('moescope: note: '));
  if (r.code === 2 && errors.length !== 1) return `exit 2 with ${errors.length} error lines: ${r.stderr.slice(0, 600)}`;
  if (r.ms > CASE_MS) return `took ${r.ms.toFixed(0)} ms`;
  if (r.rss > RSS_LIMIT) return `resident memory ${(r.rss / 2 ** 20).toFixed(0)} MiB`;
  return null;
}

test('fuzz: mutated traces, JSONL / Megatron / npy imports, check configs and plan weights end in 0/1/2 with one short line', {
  timeout: 600_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-fuzz-'));
  const seedTrace = join(dir, 'seed.arrows');
  writeSeedTrace(seedTrace);
  let n = 0;
  const runner = new Runner();
  const failures: string[] = [];
  const only = process.env.FUZZ_ONLY; // "target:case"
  const counts: Record<string, Record<number, number>> = {};
  try {
    for (const target of TARGETS) {
      const ctx: FuzzContext = { dir, trace: seedTrace, out: (name) => join(dir, 'out', `${n}-${name}`) };
      mkdirSync(join(dir, 'out'), { recursive: true });
      const seedPath = await writeSeed(target, ctx);
      const seed = readFileSync(seedPath);
      // The unmutated seed must pass cleanly: a row whose seed fails tests nothing.
      for (const cmd of target.commands) {
        const r = await runner.run(n++, cmd(seedPath, ctx));
        const why = judge(r);
        assert.equal(why, null, `${target.name} seed: ${why}`);
        assert.ok(
          typeof r !== 'string' && r.code <= 1,
          `${target.name} seed: exit ${(r as Reply).code} ${(r as Reply).stderr}`,
        );
      }
      counts[target.name] = {};
      for (let i = 0; i < CASES; i++) {
        if (only && only !== `${target.name}:${i}`) continue;
        const rng = new Rng(i * 7919 + target.name.length * 104729 + target.name.charCodeAt(0));
        const mutant = target.kind === 'binary' ? mutateBinary(seed, rng) : mutateText(seed.toString('utf8'), rng);
        const file = join(dir, `${target.name}-${i}.${target.ext}`);
        writeFileSync(file, mutant);
        const argv = target.commands[i % target.commands.length]!(file, ctx);
        const r = await runner.run(n++, argv);
        const why = judge(r);
        if (typeof r !== 'string') counts[target.name]![r.code] = (counts[target.name]![r.code] ?? 0) + 1;
        if (why) failures.push(`${target.name}:${i} moescope ${argv.join(' ')}\n    ${why.split('\n')[0]}`);
        else rmSync(file);
      }
    }
  } finally {
    await runner.close();
  }
  t.diagnostic(`exit codes per target: ${JSON.stringify(counts)}`);
  if (failures.length === 0) rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(
    failures,
    [],
    `${failures.length} fuzz cases failed (mutants kept in ${dir}):\n${failures.join('\n')}`,
  );
});
