/**
 * <Heatmap>: the heatmap's lines, drawn by the heatmap layer (heatmap-layer.ts) into a box Ink lays out empty.
 * The one component that draws past Ink, and only because Ink's per-grapheme composition of a full-colour
 * 58 × 256 heatmap misses the frame goal by an order of magnitude (docs/tui.md § How it is built).
 * `rows` are whole terminal lines of exactly `width` columns; `top` is the screen row of the first.
 */
import { Box } from 'ink';
import { useLayoutEffect } from 'react';
import { useView } from '../context.js';

export function Heatmap({ rows, top, width }: { rows: readonly string[]; top: number; width: number }) {
  const { heat } = useView();
  // A layout effect runs in the same commit that lays the box out, before Ink composes the frame.
  useLayoutEffect(() => heat.paint(top, rows), [heat, top, rows]);
  useLayoutEffect(() => () => heat.remove(), [heat]);
  return <Box height={rows.length} width={width} flexShrink={0} />;
}
