import type { Truncation } from '../trace/reader.js';
import { printError } from '../core/sanitize.js';

/**
 * A trace cut short (a killed recorder) is bad input: the command still shows or writes what its complete tokens
 * say — nothing readable is lost — then names the problem in one line on stderr and exits 2, so scripts notice.
 */
export function flagTruncated(path: string, cut: Truncation | null, completeTokens: number): void {
  if (!cut) return;
  const lost = cut.rowsLost !== null ? `${cut.rowsLost} tokens lost` : 'its last batch lost';
  printError(
    `${path} is truncated at byte ${cut.atByte} (${lost}); the output covers its ${completeTokens} complete tokens`,
  );
  process.exitCode = 2;
}

/**
 * A trace without end-of-stream marker but with whole batches (a killed recorder, or one still writing) is read
 * in full, and the user is told: one note on stderr, so that no result silently passes for a finished run.
 * Returns the note (for JSON / text output), or null when the trace was closed or is cut (flagTruncated's case).
 */
export function noteUnclosed(
  path: string,
  trace: { complete: boolean; truncated: Truncation | null; tokenCount: number },
): string | null {
  if (trace.complete || trace.truncated) return null;
  const note = `${path} ended without being closed (no end-of-stream marker: its recorder was killed or is still writing); the output covers its ${trace.tokenCount} tokens`;
  printError(`note: ${note}`);
  return note;
}
