/**
 * `moescope dash` over a long run: a dashboard frame after a history of S steps (one step = one history point as
 * recorded, 58 MoE layers × 256 experts, top-8, one step a second of stream time, 8 GPUs' memory sampled every 10
 * steps), for two run lengths — an hour (3,600 steps) and a day (86,400 steps). Each length runs in its own process:
 * the median / p90 frame time (a new step arrives → the store's frame is built → the history view → every widget
 * updated → blessed writes the screen) and the process's RSS and JS heap after a GC at the end. The goal: ≤ 33 ms a
 * frame and memory independent of the run length (the history is bounded: src/stats/history.ts).
 *
 *   node dist/bench/dash.js [--steps 3600,86400] [--frames 40] [--size 160x50]
 *   node --expose-gc dist/bench/dash.js --child --steps 86400     (one run; prints one JSON line)
 */
process.env.FORCE_COLOR = '2';

import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { median } from './common.js';
import { FakeStdin, FakeTty } from './ui-fakes.js';

const LAYERS = 58;
const EXPERTS = 256;
const TOP_K = 8;
const GPUS = 8;
const TOKENS_PER_STEP = 4;

interface Result {
  steps: number;
  cols: number;
  rows: number;
  frames: number;
  medianMs: number;
  p90Ms: number;
  /** Median CPU time of this process per frame (user + system): what a frame costs when the machine is busy. */
  cpuMs: number;
  points: number;
  feedMs: number;
  /** Median ms of each part of a frame: the store's frame, the history view, setting the widgets, blessed's render. */
  parts: { store: number; history: number; widgets: number; render: number };
  rssMiB: number;
  heapMiB: number;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;

async function child(steps: number, frames: number, cols: number, rows: number): Promise<Result> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { synthesize } = await import('../src/trace/synth.js');
  const { openTrace } = await import('../src/trace/index.js');
  const { sliceBatch } = await import('../src/core/batch.js');
  const { memoryStream } = await import('../src/core/routing-stream.js');
  const { HistoryModel } = await import('../src/store/history.js');
  const { StreamFeed } = await import('../src/store/feeds.js');
  const { createTuiStore, startPublishing } = await import('../src/store/app-store.js');
  const { contiguousSpec } = await import('../src/store/placement-spec.js');
  const { createScreen } = await import('../src/dash/blessed.js');
  const { Dashboard, WORST_LAYERS } = await import('../src/dash/dashboard.js');

  // A pool of routed tokens (Zipf-skewed, one collapsing layer), cycled through for as many steps as asked.
  const dir = mkdtempSync(join(tmpdir(), 'moescope-bench-dash-'));
  const pool = 8192;
  let all;
  let schema;
  let meta;
  try {
    const path = join(dir, 'pool.arrows');
    synthesize(path, {
      layers: LAYERS,
      experts: EXPERTS,
      topK: TOP_K,
      tokens: pool,
      skew: { kind: 'zipf', s: 1.1 },
      collapse: { layer: 20, expert: 7, from: 0.5 },
      logits: false,
      seed: 1,
    });
    const t = openTrace(path);
    all = t.readRange(0, pool);
    schema = t.schema;
    meta = t.meta;
    t.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const placement = contiguousSpec(schema, GPUS);
  // stepTokens = tokens per step: one history point per step, as the "one point per step".
  const model = new HistoryModel(schema, meta, {
    window: 512,
    stepTokens: TOKENS_PER_STEP,
    placement: placement!.placement,
  });
  const t0 = 1_780_000_000_000;
  let pos = 0;
  let step = 0;
  const addStep = () => {
    if (pos + TOKENS_PER_STEP > pool) pos = 0;
    const b = sliceBatch(all, schema, pos, pos + TOKENS_PER_STEP);
    const tNs = BigInt(t0 + step * 1000) * 1_000_000n;
    b.tNs = new BigInt64Array(TOKENS_PER_STEP).fill(tNs);
    model.add(b);
    if (step % 10 === 0)
      model.addMemory({
        tNs,
        gpus: Array.from({ length: GPUS }, (_, g) => ({
          index: g,
          name: 'H200',
          usedBytes: (60 + g + (step % 7)) * 2 ** 30,
          totalBytes: 141 * 2 ** 30,
          utilization: 80,
        })),
        hostRssBytes: process.memoryUsage().rss,
        ortBytes: null,
      });
    pos += TOKENS_PER_STEP;
    step++;
  };
  const f0 = performance.now();
  for (let i = 0; i < steps; i++) addStep();
  const feedMs = performance.now() - f0;

  // The store and publisher the command uses; the feed is a live one the bench never starts (steps go in by hand).
  const feed = new StreamFeed(memoryStream('bench', schema, [], meta), model, 'live');
  const store = createTuiStore({
    model,
    feed,
    source: { kind: 'live', label: 'bench', recording: null, placement },
    term: { columns: cols, rows },
  });
  const pub = startPublishing(store, model, feed, 1000);
  pub.stop(); // frames are published by hand below
  const tty = new FakeTty(cols, rows);
  const screen = createScreen({
    output: tty as unknown as NodeJS.WriteStream,
    input: new FakeStdin() as unknown as NodeJS.ReadStream,
  });
  const dash = new Dashboard(screen, { color: true, thresholds: { maxVio: 1.5, cv: 1, balancedness: 0.8 } });
  const ui = { metric: 'cv' as const, help: false, heatTop: 0 };
  const parts = { store: [] as number[], history: [] as number[], widgets: [] as number[], render: [] as number[] };
  const frame = () => {
    const s = store.getState();
    const a = performance.now();
    const history = model.history.view(s.frame.layerIds, WORST_LAYERS);
    const b = performance.now();
    dash.update({ frame: s.frame, feed: s.feed, source: s.source, history, ui, notice: null, counts: null });
    const c = performance.now();
    screen.render();
    (screen as unknown as { program: { flush(): void } }).program.flush(); // blessed writes on the next tick otherwise
    parts.history.push(b - a);
    parts.widgets.push(c - b);
    parts.render.push(performance.now() - c);
  };
  frame(); // lays the screen out
  const times: number[] = [];
  const cpu: number[] = [];
  for (let f = 0; f < frames; f++) {
    addStep(); // the producer's side, timed above
    const a = performance.now();
    const c0 = process.cpuUsage();
    pub.flush(); // the store's frame, as the dashboard's publisher builds it
    parts.store.push(performance.now() - a);
    frame();
    times.push(performance.now() - a);
    const c1 = process.cpuUsage(c0);
    cpu.push((c1.user + c1.system) / 1000);
    await new Promise((r) => setImmediate(r));
  }
  const points = model.history.view(schema.layers).points;
  screen.destroy();
  (globalThis as { gc?: () => void }).gc?.();
  const mem = process.memoryUsage();
  return {
    steps,
    cols,
    rows,
    frames,
    medianMs: median(times),
    p90Ms: p90(times),
    cpuMs: median(cpu),
    points,
    feedMs,
    parts: {
      store: median(parts.store),
      history: median(parts.history),
      widgets: median(parts.widgets),
      render: median(parts.render),
    },
    rssMiB: mem.rss / 2 ** 20,
    heapMiB: mem.heapUsed / 2 ** 20,
  };
}

async function main(): Promise<void> {
  const frames = Number(arg('--frames', '40'));
  const [cols, rows] = arg('--size', '160x50').split('x').map(Number) as [number, number];
  if (process.argv.includes('--child')) {
    const r = await child(Number(arg('--steps', '3600')), frames, cols, rows);
    console.log(JSON.stringify(r));
    process.exit(0);
  }
  const lengths = arg('--steps', '3600,86400').split(',').map(Number);
  console.log(
    `dash frame: ${LAYERS} layers × ${EXPERTS} experts top-${TOP_K}, ${GPUS} GPUs, ${cols}×${rows}, ${frames} frames; one process per run length`,
  );
  console.log('steps (run length)      points  feed s   frame median ms  p90 ms  CPU ms   RSS MiB  heap MiB');
  const results: Result[] = [];
  for (const steps of lengths) {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        fileURLToPath(import.meta.url),
        '--child',
        '--steps',
        String(steps),
        '--frames',
        String(frames),
        '--size',
        `${cols}x${rows}`,
      ],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      },
    );
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) {
      console.log(`${steps}: FAILED ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      process.exitCode = 1;
      continue;
    }
    const x = JSON.parse(line) as Result;
    results.push(x);
    const label = `${x.steps.toLocaleString('en-US')} (${(x.steps / 3600).toFixed(x.steps % 3600 ? 2 : 0)} h)`;
    console.log(
      `${label.padEnd(22)} ${String(x.points).padStart(7)} ${(x.feedMs / 1000).toFixed(1).padStart(7)} ${x.medianMs.toFixed(1).padStart(16)} ${x.p90Ms.toFixed(1).padStart(7)} ${x.cpuMs.toFixed(1).padStart(7)} ${x.rssMiB.toFixed(0).padStart(9)} ${x.heapMiB.toFixed(1).padStart(9)}`,
    );
  }
  for (const x of results)
    console.log(
      `  ${x.steps} steps, median ms per part: store frame ${x.parts.store.toFixed(1)}, history view ${x.parts.history.toFixed(1)}, widgets ${x.parts.widgets.toFixed(1)}, blessed render ${x.parts.render.toFixed(1)}`,
    );
  if (results.length === 0) return;
  const worst = Math.max(...results.map((r) => r.medianMs));
  const worstCpu = Math.max(...results.map((r) => r.cpuMs));
  console.log(
    `goal: ≤ 33 ms a frame — ${worst <= 33 ? 'met' : 'NOT met'} (worst median ${worst.toFixed(1)} ms wall, ${worstCpu.toFixed(1)} ms CPU; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`,
  );
  if (results.length >= 2) {
    const a = results[0]!;
    const b = results[results.length - 1]!;
    const grew = b.heapMiB - a.heapMiB;
    console.log(
      `memory independent of run length: JS heap ${a.heapMiB.toFixed(1)} → ${b.heapMiB.toFixed(1)} MiB over ${(b.steps / a.steps).toFixed(0)}× the steps (${grew >= 0 ? '+' : ''}${grew.toFixed(1)} MiB), points ${a.points} → ${b.points} — ${Math.abs(grew) < 8 && b.points <= 256 ? 'met' : 'NOT met'}`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
