/**
 * Painted regions in components (paint.ts). <Painted> reserves `width` columns with a box holding only the
 * 4-character marker, so Ink measures and tokenises 4 characters instead of the region's width; the terminal
 * receives `text` in its place. Put it in a row <Box>, not inside a <Text>.
 */
import { Box, Text } from 'ink';
import { useView } from '../context.js';
import { MARKER_WIDTH } from '../paint.js';

export function Painted({ id, text, width }: { id: string; text: string; width: number }) {
  const { registry } = useView();
  const w = Math.max(MARKER_WIDTH, width);
  const body = width < MARKER_WIDTH ? text + ' '.repeat(MARKER_WIDTH - width) : text;
  return (
    <Box width={w} flexShrink={0}>
      <Text>{registry.marker(id, body, w)}</Text>
    </Box>
  );
}
