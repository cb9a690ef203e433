/** The `?` overlay: every key, generated from the binding table (keys.ts), grouped, in one or two columns. */
import { Box, Text } from 'ink';
import { useTui, useView } from '../context.js';
import { overlayRows } from '../keys.js';

export function HelpOverlay({ width, height }: { width: number; height: number }) {
  const kind = useTui((s) => s.source.kind);
  const { theme } = useView();
  const rows = overlayRows();
  const columns = rows.length + 2 <= height ? 1 : 2;
  const perColumn = Math.ceil(rows.length / columns);
  const colWidth = Math.floor((width - 2) / columns);
  const cols = Array.from({ length: columns }, (_, c) => rows.slice(c * perColumn, (c + 1) * perColumn));
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text wrap="truncate">
        <Text bold color={theme.accent}>
          Keys
        </Text>
        <Text color={theme.muted}>
          {' '}
          · source: {kind}
          {kind === 'replay' ? ' (playback keys apply)' : ' (space freezes the view; data keeps arriving)'} · ? or esc
          closes
        </Text>
      </Text>
      <Box flexDirection="row">
        {cols.map((col, c) => (
          <Box key={c} flexDirection="column" width={colWidth} marginRight={1}>
            {col.map((r, i) => {
              const firstOfGroup = i === 0 || col[i - 1]!.group !== r.group;
              return (
                <Text key={i} wrap="truncate">
                  <Text color={theme.muted}>{(firstOfGroup ? r.group : '').padEnd(11)}</Text>
                  <Text bold color={theme.accent}>
                    {r.keys.padEnd(12)}
                  </Text>
                  <Text>{r.description}</Text>
                </Text>
              );
            })}
          </Box>
        ))}
      </Box>
    </Box>
  );
}

/**
 * A terminal below the minimum: what is needed and how to leave, wrapped to whatever width there is (at 40×12
 * every word of it shows).
 */
export function TooSmall({
  columns,
  rows,
  needColumns,
  needRows,
}: {
  columns: number;
  rows: number;
  needColumns: number;
  needRows: number;
}) {
  return (
    <Box flexDirection="column" width={Math.max(1, columns)}>
      <Text wrap="wrap">
        moescope needs a terminal of at least {needColumns}×{needRows}; this one is {columns}×{rows}. Enlarge it, or
        press q to quit.
      </Text>
    </Box>
  );
}
