/**
 * Measures ways of drawing a full-colour heatmap with Ink, to choose the design of the overview (docs/tui.md):
 *
 *   string   the rows built as strings, no Ink (the floor)
 *   ink      one pre-coloured <Text> per row
 *   ink+inc  the same with Ink's incrementalRendering
 *   layer    Ink (incremental) lays out an empty box, the heatmap layer writes the changed rows into it at their
 *            absolute rows (src/views/heatmap-layer.ts: what the TUI does)
 *
 * Every frame changes every row (the worst case: a batch touched all layers). Prints the median / p90 frame time
 * (data change → bytes written) and each as a ratio of the `ink` variant measured in the same run.
 *
 *   node dist/bench/ui-design.js [--frames N] [--size 160x50] [--layers 58] [--experts 256]
 */
process.env.CI = 'false'; // Ink writes no frames while CI is set
process.env.FORCE_COLOR = '2';
process.env.NODE_ENV ??= 'production'; // what the CLI runs (src/views/entry.ts)

import { FakeStdin, FakeTty } from './ui-fakes.js';

interface Args {
  frames: number;
  sizes: [number, number][];
  layers: number;
  experts: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    frames: 40,
    sizes: [
      [160, 50],
      [300, 70],
    ],
    layers: 58,
    experts: 256,
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1] ?? '';
    if (argv[i] === '--frames') a.frames = Number(v);
    else if (argv[i] === '--size') a.sizes = v.split(',').map((s) => s.split('x').map(Number) as [number, number]);
    else if (argv[i] === '--layers') a.layers = Number(v);
    else if (argv[i] === '--experts') a.experts = Number(v);
  }
  return a;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const React = await import('react');
  const { Box, Text, render } = await import('ink');
  const { makeTheme, HEAT_LEVELS } = await import('../src/views/theme.js');
  const { HeatRowCache, renderHeatRow } = await import('../src/views/heat-rows.js');
  const { HeatmapLayer, InkStdout } = await import('../src/views/heatmap-layer.js');
  const { useLayoutEffect } = React;
  const theme = makeTheme('ansi256');
  const h = React.createElement;

  for (const [cols, rows] of args.sizes) {
    const visRows = Math.min(args.layers, rows - 6);
    const bin = Math.max(1, Math.ceil(args.experts / (cols - 8)));
    const width = Math.ceil(args.experts / bin);
    console.log(
      `\n${args.layers} layers × ${args.experts} experts in ${cols}×${rows}: ${visRows} rows × ${width} columns ` +
        `(${bin} expert${bin > 1 ? 's' : ''}/column), ${args.frames} frames, every row changing`,
    );
    const levels = Array.from({ length: visRows }, () => new Uint8Array(width));
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const step = () => {
      for (const row of levels)
        for (let i = 0; i < row.length; i++)
          row[i] = Math.min(HEAT_LEVELS - 1, Math.max(0, row[i]! + Math.round((rnd() - 0.5) * 6)));
    };
    for (const row of levels) for (let i = 0; i < row.length; i++) row[i] = Math.floor(rnd() * HEAT_LEVELS);

    const results: { name: string; median: number; p90: number; bytes: number }[] = [];

    // The floor: strings only.
    {
      const cache = new HeatRowCache();
      const times: number[] = [];
      for (let f = 0; f < args.frames; f++) {
        step();
        const t0 = performance.now();
        let s = '';
        for (let r = 0; r < levels.length; r++) s += `L${r} ` + cache.row(`r${r}`, levels[r]!, theme) + '\n';
        times.push(performance.now() - t0);
        if (s.length === 0) throw new Error('empty');
      }
      results.push({ name: 'string', median: quantile(times, 0.5), p90: quantile(times, 0.9), bytes: 0 });
    }

    for (const variant of ['ink', 'ink+inc', 'layer'] as const) {
      const tty = new FakeTty(cols, rows);
      const layer = new HeatmapLayer(tty);
      const painted = variant === 'layer';
      const out = painted ? new InkStdout(tty as unknown as NodeJS.WriteStream, layer) : tty;
      let setFrame: (n: number) => void = () => {};
      const cache = new HeatRowCache();
      function Heatmap(): React.ReactElement {
        const [n, set] = React.useState(0);
        setFrame = set;
        const rowsOut = painted
          ? levels.map((row, r) => `L${String(r).padStart(2)} ` + cache.row(`r${r}`, row, theme))
          : [];
        useLayoutEffect(() => {
          if (painted) layer.paint(1, rowsOut);
        }, [n]);
        return h(
          Box,
          { flexDirection: 'column' },
          h(Text, { bold: true }, `heatmap ${args.layers} × ${args.experts}`),
          ...(painted
            ? [h(Box, { key: 'box', height: levels.length, width: width + 4 })]
            : levels.map((row, r) =>
                h(Text, { key: r, wrap: 'truncate' }, `L${String(r).padStart(2)} `, renderHeatRow(row, theme)),
              )),
        );
      }
      const inst = render(h(Heatmap), {
        stdout: out as unknown as NodeJS.WriteStream,
        stdin: new FakeStdin() as unknown as NodeJS.ReadStream,
        patchConsole: false,
        exitOnCtrlC: false,
        maxFps: 1000,
        incrementalRendering: variant !== 'ink',
      });
      await tty.nextWrite(2000);
      const times: number[] = [];
      const bytes0 = tty.bytes;
      for (let f = 0; f < args.frames; f++) {
        step();
        await new Promise((r) => setTimeout(r, 2)); // let the throttle window pass
        const t0 = performance.now();
        const wrote = tty.nextWrite(5000);
        setFrame(f + 1);
        if (!(await wrote)) throw new Error(`${variant}: no frame written`);
        times.push(performance.now() - t0);
      }
      const bytes = (tty.bytes - bytes0) / args.frames;
      inst.unmount();
      results.push({ name: variant, median: quantile(times, 0.5), p90: quantile(times, 0.9), bytes });
    }
    const base = results.find((r) => r.name === 'ink')!.median;
    console.log('variant        median ms   p90 ms   ÷ ink   bytes/frame');
    for (const r of results)
      console.log(
        `${r.name.padEnd(13)} ${r.median.toFixed(2).padStart(9)} ${r.p90.toFixed(2).padStart(8)} ${(r.median / base).toFixed(3).padStart(7)} ${String(Math.round(r.bytes)).padStart(12)}`,
      );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
