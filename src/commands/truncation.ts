import type { Truncation } from '../trace/reader.js';
import { printError } from '../core/sanitize.js';

/**
 * A trace cut short (a killed recorder) is bad input: the command still shows or writes what its complete tokens
 * say — nothing readable is lost — then names the problem in one line on stderr and exits 2, so scripts notice.
 */
export function flagTruncated(path: string, cut: Truncation | null, completeTokens: number): void {
  if (!cut) return;
  const lost = cut.rowsLost !== null ? `${cut.rowsLost} tokens lost` : 'its last batch lost';
  printError(`${path} is truncated at byte ${cut.atByte} (${lost}); the output covers its ${completeTokens} complete tokens`);
  process.exitCode = 2;
}
