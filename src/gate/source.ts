/** Where `check`, `diff` and `report` get routing from: a recorded trace (here), or a model run over prompts (model-source.ts). */
import type { RoutingStream } from '../core/routing-stream.js';
import { UserError } from '../core/errors.js';

/**
 * A recorded trace. A truncated file (cut inside a message) is refused: a gate must not pass on part of a run
 * whose recorder crashed. A trace without end-of-stream marker but with whole batches is read, with a note.
 */
export async function traceSource(path: string): Promise<RoutingStream> {
  const { openTrace, traceStream } = await import('../trace/index.js');
  const t = openTrace(path);
  const cut = t.truncated;
  if (cut) {
    t.close();
    const lost = cut.rowsLost === null ? 'an unknown number of' : String(cut.rowsLost);
    throw new UserError(
      `${path} is truncated at byte ${cut.atByte} (${lost} tokens lost); re-record it, or gate on a complete trace`,
    );
  }
  return traceStream(t);
}
