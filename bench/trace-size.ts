/**
 * Trace size and streaming memory at DeepSeek-V3 scale (58 MoE layers × 256 experts, top-8, no logits).
 *
 *   node dist/bench/trace-size.js [--tokens N] [--trace PATH]
 *
 * Prints: file size / raw routing payload (uint16 ids + float16 weights; target ≤ 1.1), peak RSS of a process
 * that streams every batch (target < 512 MB), and streaming time relative to a plain sequential read of the
 * same file measured in the same run (the floor any reader pays).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTrace } from '../src/trace/index.js';
import { synthesize } from '../src/trace/synth.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Child mode: stream the trace, touch every expert id, report time and peak RSS. */
function streamChild(path: string, reuse: boolean): void {
  const t0 = performance.now();
  const t = openTrace(path);
  let tokens = 0;
  let check = 0;
  for (const b of t.batches(0, { reuse })) {
    tokens += b.length;
    const ex = b.experts;
    for (let i = 0; i < ex.length; i += 64) check += ex[i]!;
  }
  t.close();
  const ms = performance.now() - t0;
  process.stdout.write(JSON.stringify({ tokens, ms, maxRssKb: process.resourceUsage().maxRSS, check }) + '\n');
}

/** Child mode: read the file sequentially in 8 MiB blocks (the I/O floor). */
function readChild(path: string): void {
  const t0 = performance.now();
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafeSlow(8 * 1024 * 1024);
  let total = 0;
  for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) total += n;
  closeSync(fd);
  process.stdout.write(JSON.stringify({ bytes: total, ms: performance.now() - t0 }) + '\n');
}

function child(mode: string, path: string): Record<string, number> {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), mode, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${mode} child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

function main(): void {
  const mode = process.argv[2];
  if (mode === '--stream-child') return streamChild(process.argv[3]!, false);
  if (mode === '--stream-reuse-child') return streamChild(process.argv[3]!, true);
  if (mode === '--read-child') return readChild(process.argv[3]!);

  const tokens = Number(arg('--tokens') ?? 1_000_000);
  const given = arg('--trace');
  const path = given ?? join(tmpdir(), `moescope-bench-trace-${process.pid}.arrows`);
  const L = 58;
  const E = 256;
  const K = 8;
  try {
    if (!given || !existsSync(path)) {
      const t0 = performance.now();
      synthesize(path, {
        layers: L,
        experts: E,
        topK: K,
        tokens,
        skew: { kind: 'zipf', s: 1.1 },
        collapse: null,
        logits: false,
        seed: 1,
      });
      console.log(
        `synth: ${tokens} tokens × ${L} layers × top-${K} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    const t = openTrace(path);
    const n = t.tokenCount;
    t.close();
    const size = statSync(path).size;
    const raw = n * L * K * (2 + 2);
    console.log(
      `trace: ${(size / 2 ** 20).toFixed(1)} MiB for ${n} tokens; raw payload ${(raw / 2 ** 20).toFixed(1)} MiB`,
    );
    console.log(`size ratio (file / raw ids+weights): ${(size / raw).toFixed(4)}  (target ≤ 1.1)`);
    child('--read-child', path); // warm the page cache so both runs below read from memory alike
    const read = child('--read-child', path);
    const stream = child('--stream-child', path);
    const reuse = child('--stream-reuse-child', path);
    const mib = (kb: number) => (kb / 1024).toFixed(0);
    console.log(`plain sequential read of the file (8 MiB blocks): ${read.ms!.toFixed(0)} ms`);
    console.log(
      `batches():                ${stream.ms!.toFixed(0)} ms = ${(stream.ms! / read.ms!).toFixed(2)}× plain read, peak RSS ${mib(stream.maxRssKb!)} MiB (target < 512)`,
    );
    console.log(
      `batches(0, {reuse:true}): ${reuse.ms!.toFixed(0)} ms = ${(reuse.ms! / read.ms!).toFixed(2)}× plain read, peak RSS ${mib(reuse.maxRssKb!)} MiB`,
    );
  } finally {
    if (!given) rmSync(path, { force: true });
  }
}

main();
