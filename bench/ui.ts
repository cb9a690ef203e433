/**
 * The overview at 58 MoE layers × 256 experts (DeepSeek-V3's shape): median frame time of the real TUI — the App
 * with its store and frames, rendered by Ink as runTui does (Ink's standard renderer, the heatmap layer for the
 * heatmap's lines; --incremental: Ink's incremental renderer, for its cost — it misplaces lines, docs/tui.md) — against a naive Ink heatmap (one pre-coloured <Text> per row) measured in the same run.
 *
 *   node dist/bench/ui.js [--frames N] [--size 160x50,300x70] [--naive-frames N] [--incremental]
 *
 * Frames: "data" = after 64 new tokens, the frame is built, rendered and written (every visible row changes);
 * "cursor" = one key moves the cursor. Ink's maxFps only spaces frames out (the TUI uses 15); frames here are
 * timed one at a time with the throttle out of the way, so the numbers are the cost of a frame.
 * Peer: the same frames' heatmap drawn with blessed (bench/ui-blessed.ts, as `moescope dash` draws it), interleaved
 * with the data frames, so the ratio is also against the fastest peer, not only naive Ink.
 * Also reports the cost of ingesting a token (stats, ring, co-activation) — what the UI thread spends per token.
 */
process.env.FORCE_COLOR = '2';
process.env.NODE_ENV ??= 'production'; // what the CLI runs (src/views/entry.ts)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './common.js';
import { FakeStdin, FakeTty } from './ui-fakes.js';
import { blessedHeatmap } from './ui-blessed.js';

interface Args {
  frames: number;
  naiveFrames: number;
  sizes: [number, number][];
  incremental: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    frames: 40,
    naiveFrames: 8,
    sizes: [
      [160, 50],
      [300, 70],
    ],
    incremental: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1] ?? '';
    if (argv[i] === '--frames') a.frames = Number(v);
    else if (argv[i] === '--naive-frames') a.naiveFrames = Number(v);
    else if (argv[i] === '--size') a.sizes = v.split(',').map((s) => s.split('x').map(Number) as [number, number]);
    else if (argv[i] === '--incremental') a.incremental = true;
  }
  return a;
}

/** Resolves after every microtask queued so far (the heatmap layer's repaint is one). */
const drained = () => new Promise<void>((r) => setImmediate(r));

const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const React = await import('react');
  const { Box, Text, render } = await import('ink');
  const { synthesize } = await import('../src/trace/synth.js');
  const { openTrace } = await import('../src/trace/index.js');
  const { RoutingModel } = await import('../src/store/model.js');
  const { LiveFeed } = await import('../src/store/feeds.js');
  const { createTuiStore, startPublishing } = await import('../src/store/app-store.js');
  const { App } = await import('../src/views/app.js');
  const { makeViewContext } = await import('../src/views/context.js');
  const { makeTheme } = await import('../src/views/theme.js');
  const { InkStdout } = await import('../src/views/heatmap-layer.js');
  const { renderHeatRow } = await import('../src/views/heat-rows.js');
  const { levelOf } = await import('../src/views/scale.js');
  const { binnedRelLoad } = await import('../src/store/selectors.js');
  const { overviewLayout } = await import('../src/store/layout.js');
  const { sliceBatch } = await import('../src/core/batch.js');

  const dir = mkdtempSync(join(tmpdir(), 'moescope-bench-ui-'));
  try {
    const path = join(dir, 'big.arrows');
    const tokens = 8192;
    synthesize(path, {
      layers: 58,
      experts: 256,
      topK: 8,
      tokens,
      skew: { kind: 'zipf', s: 1.1 },
      collapse: { layer: 20, expert: 7, from: 0.5 },
      logits: false,
      seed: 1,
    });
    const trace = openTrace(path);
    const all = trace.readRange(0, tokens);
    trace.close();
    const schema = trace.schema;

    // Ingest cost: what the UI thread spends per token at this size.
    {
      const m = new RoutingModel(schema, trace.meta);
      const t0 = performance.now();
      for (let i = 0; i < tokens; i += 64) m.add(sliceBatch(all, schema, i, Math.min(tokens, i + 64)));
      const ms = performance.now() - t0;
      console.log(
        `ingest: ${tokens} tokens of 58 × 256 top-8 in ${ms.toFixed(0)} ms = ${((ms * 1000) / tokens).toFixed(1)} µs/token (${Math.round((tokens / ms) * 1000)} tokens/s)`,
      );
    }

    const theme = makeTheme('ansi256');
    for (const [cols, rows] of args.sizes) {
      const model = new RoutingModel(schema, trace.meta);
      const feed = new LiveFeed(model);
      let pos = 0;
      const feedMore = (n: number) => {
        const end = Math.min(tokens, pos + n);
        if (end > pos) feed.push(sliceBatch(all, schema, pos, end));
        pos = end >= tokens ? 0 : end;
        if (pos === 0) model.reset();
      };
      feedMore(2048);
      const store = createTuiStore({
        model,
        feed,
        source: { kind: 'live', label: 'bench', recording: null, placement: null },
        term: { columns: cols, rows },
      });
      const pub = startPublishing(store, model, feed, 1000);
      pub.stop(); // frames are published by hand below
      const tty = new FakeTty(cols, rows);
      const view = makeViewContext(theme, tty);
      const screen = new InkStdout(tty as unknown as NodeJS.WriteStream, view.heat);
      const inkTimes: number[] = [];
      const ink = render(React.createElement(App, { store, view }), {
        stdout: screen as unknown as NodeJS.WriteStream,
        stdin: new FakeStdin() as unknown as NodeJS.ReadStream,
        onRender: ({ renderTime }) => inkTimes.push(renderTime),
        incrementalRendering: args.incremental,
        maxFps: 1000,
        patchConsole: false,
        exitOnCtrlC: false,
      });
      await new Promise((r) => setTimeout(r, 50));
      const data: number[] = [];
      const cursor: number[] = [];
      // The peer: blessed drawing the same frame's heatmap at the same size, one frame after each Ink data frame.
      const peer = blessedHeatmap(cols, rows);
      const blessedTimes: number[] = [];
      let bytes = 0;
      for (let f = 0; f < args.frames; f++) {
        await new Promise((r) => setTimeout(r, 3)); // past Ink's throttle (1 ms at maxFps 1000)
        feedMore(64); // ingesting is the producer's side, reported above per token
        let wrote = tty.nextWrite(5000);
        const b0 = tty.bytes;
        const t0 = performance.now();
        pub.flush(); // build the frame (src/store), render it (React, Ink), write the changed lines
        if (!(await wrote)) throw new Error('no frame written');
        await drained(); // the heatmap layer repaints in a microtask after Ink's write
        data.push(performance.now() - t0);
        bytes += tty.bytes - b0;
        blessedTimes.push(peer.draw(store.getState().frame));
        await new Promise((r) => setTimeout(r, 3));
        wrote = tty.nextWrite(5000);
        const t1 = performance.now();
        store.getState().actions.selectExpert(store.getState().ui.expert + 4);
        if (!(await wrote)) throw new Error('no frame written for a cursor move');
        await drained();
        cursor.push(performance.now() - t1);
      }
      ink.unmount();
      peer.destroy();

      // Baseline: the naive Ink heatmap of the same viewport, one pre-coloured <Text> per row.
      const frame = store.getState().frame;
      const g = overviewLayout(frame, { columns: cols, rows }, { zoom: 0, layer: 0, expert: 0 });
      const naiveTty = new FakeTty(cols, rows);
      let setN: (n: number) => void = () => {};
      const levels = new Uint8Array(g.vp.columns);
      const binned = new Float32Array(g.vp.columns);
      const Naive = () => {
        const [n, set] = React.useState(0);
        setN = set;
        const fr = store.getState().frame;
        const rowsOut: React.ReactNode[] = [];
        for (let r = 0; r < g.vp.layers; r++) {
          binnedRelLoad(fr, (r + n) % 58, 0, g.vp.bin, g.vp.columns, binned);
          for (let c = 0; c < g.vp.columns; c++) levels[c] = levelOf(binned[c]!);
          rowsOut.push(React.createElement(Text, { key: r, wrap: 'truncate' }, `L${r} `, renderHeatRow(levels, theme)));
        }
        return React.createElement(Box, { flexDirection: 'column' }, ...rowsOut);
      };
      const nInk = render(React.createElement(Naive), {
        stdout: naiveTty as unknown as NodeJS.WriteStream,
        stdin: new FakeStdin() as unknown as NodeJS.ReadStream,
        debug: true,
        patchConsole: false,
        exitOnCtrlC: false,
      });
      await new Promise((r) => setTimeout(r, 50));
      const naive: number[] = [];
      for (let f = 0; f < args.naiveFrames; f++) {
        const wrote = naiveTty.nextWrite(10_000);
        const t0 = performance.now();
        setN(f + 1);
        if (!(await wrote)) throw new Error('naive: no frame');
        naive.push(performance.now() - t0);
      }
      nInk.unmount();

      const base = median(naive);
      console.log(
        `\n${cols}×${rows}: heatmap ${g.vp.layers} of 58 layers × ${g.vp.columns} columns (${g.vp.bin} expert${g.vp.bin > 1 ? 's' : ''}/column)`,
      );
      console.log('frame                      median ms   p90 ms   ÷ naive');
      console.log(
        `naive Ink heatmap           ${base.toFixed(1).padStart(8)} ${p90(naive).toFixed(1).padStart(8)}     1.000`,
      );
      console.log(
        `moescope, data frame        ${median(data).toFixed(1).padStart(8)} ${p90(data).toFixed(1).padStart(8)} ${(median(data) / base).toFixed(3).padStart(9)}   (${Math.round(bytes / args.frames)} bytes/frame)`,
      );
      console.log(
        `blessed, same heatmap       ${median(blessedTimes).toFixed(1).padStart(8)} ${p90(blessedTimes).toFixed(1).padStart(8)} ${(median(blessedTimes) / base).toFixed(3).padStart(9)}   (${peer.rows} rows × ${peer.columns} columns, ${Math.round(peer.bytes / args.frames)} bytes/frame; interleaved with the data frames)`,
      );
      console.log(
        `moescope, cursor move       ${median(cursor).toFixed(1).padStart(8)} ${p90(cursor).toFixed(1).padStart(8)} ${(median(cursor) / base).toFixed(3).padStart(9)}`,
      );
      console.log(
        `  of which Ink's layout and output (median): ${median(inkTimes).toFixed(1)} ms; incremental rendering ${args.incremental ? 'on' : 'off'}`,
      );
      console.log(
        `goal: ≤ 33 ms per frame (the UI draws ≤ 15 frames/s) — ${median(data) <= 33 ? 'met' : 'NOT met'} here`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
