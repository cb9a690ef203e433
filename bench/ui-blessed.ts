/**
 * The peer for bench/ui.ts: the same heatmap frame drawn with blessed (as `moescope dash` draws its heat grid,
 * src/dash): the store's frame → cells (the overview's binning and colour scale) → blessed's screen buffer →
 * blessed's diff against the terminal → bytes written. ui.ts interleaves one of these with each Ink frame.
 */
import { createScreen, HeatGrid } from '../src/dash/blessed.js';
import { heatCells } from '../src/dash/dashboard.js';
import { HeatScale } from '../src/dash/heat.js';
import type { Frame } from '../src/store/frame.js';
import { FakeStdin, FakeTty } from './ui-fakes.js';

export interface BlessedHeatmap {
  /** Draws `frame`'s heatmap; returns the ms from the frame to the bytes written. */
  draw(frame: Frame): number;
  readonly rows: number;
  readonly columns: number;
  bytes: number;
  destroy(): void;
}

export function blessedHeatmap(cols: number, rows: number): BlessedHeatmap {
  const tty = new FakeTty(cols, rows);
  const screen = createScreen({
    output: tty as unknown as NodeJS.WriteStream,
    input: new FakeStdin() as unknown as NodeJS.ReadStream,
  });
  const grid = new HeatGrid(screen, { top: 0, left: 0, width: cols, height: rows }, 'load');
  const scale = new HeatScale(true);
  const program = (screen as unknown as { program: { flush(): void } }).program;
  let shown = { rows: 0, columns: 0 };
  const out: BlessedHeatmap = {
    bytes: 0,
    get rows() {
      return shown.rows;
    },
    get columns() {
      return shown.columns;
    },
    draw(frame) {
      const b0 = tty.bytes;
      const t0 = performance.now();
      const { cells } = heatCells(frame, scale, grid.inner, 0);
      grid.set(cells);
      screen.render();
      program.flush(); // blessed writes on the next tick otherwise
      const ms = performance.now() - t0;
      out.bytes += tty.bytes - b0;
      shown = { rows: cells.rows, columns: cells.columns };
      return ms;
    },
    destroy() {
      screen.destroy();
    },
  };
  return out;
}
