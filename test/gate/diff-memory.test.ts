/**
 * `moescope diff` streams both traces: its peak memory does not grow with their length (it held both whole
 * before — 2.8 GB for two 250k-token DeepSeek-scale traces; bench/diff-rss.ts measures that scale).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesize, type SynthSpec } from '../../src/trace/synth.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const HOOK =
  'data:text/javascript,import{writeFileSync}from"node:fs";' +
  'process.on("exit",()=>writeFileSync(process.env.RSS_FILE,String(process.resourceUsage().maxRSS)))';

test('diff of two 60k-token DeepSeek-scale traces (110 MiB each) peaks under 300 MiB and pairs every shared token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-diff-mem-'));
  try {
    const spec = (collapse: boolean): SynthSpec => ({
      layers: 58,
      experts: 256,
      topK: 8,
      tokens: 60_000,
      skew: { kind: 'zipf', s: 1.1 },
      collapse: collapse ? { layer: 3, expert: 5, from: 0.5 } : null,
      logits: false,
      seed: 5,
    });
    synthesize(join(dir, 'a.arrows'), spec(false));
    synthesize(join(dir, 'b.arrows'), spec(true));
    const rss = join(dir, 'rss');
    const r = spawnSync(
      process.execPath,
      ['--import', HOOK, CLI, 'diff', join(dir, 'a.arrows'), join(dir, 'b.arrows'), '--format', 'json'],
      {
        encoding: 'utf8',
        env: { ...process.env, RSS_FILE: rss },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { identicalTokens: number; rows: { layer: number; agreement: number }[] };
    // Same seed: identical tokens until the collapse (half way) changes the draws; every sequence before it pairs.
    assert.ok(out.identicalTokens >= 30_000 && out.identicalTokens < 31_000, `identical tokens ${out.identicalTokens}`);
    assert.equal(out.rows.find((x) => x.layer === 0)!.agreement, 1);
    const peakMiB = Number(readFileSync(rss, 'utf8')) / 1024;
    assert.ok(peakMiB < 300, `peak RSS ${peakMiB.toFixed(0)} MiB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
