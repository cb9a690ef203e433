/**
 * A generation as a RoutingStream (src/core/routing-stream.ts): the token batches the engine posts, memory
 * samples between them, and how the run ended. The handle must queue events (startGeneration's default
 * `buffer: true`); a consumer that falls far behind pauses generation until it catches up.
 */
import type { RoutingStream, StreamEnd, StreamItem } from '../core/routing-stream.js';
import type { GenerationHandle, GenerationInfo } from './generation-handle.js';

/** Waits for the model to open (rejects with a UserError on bad input), then streams its routing. */
export async function generationStream(
  h: GenerationHandle,
  label: string,
): Promise<RoutingStream & { info: GenerationInfo }> {
  let info: GenerationInfo;
  try {
    info = await h.ready;
  } catch (e) {
    await h.stop().catch(() => undefined);
    throw e;
  }
  const ended: Promise<StreamEnd> = h.done.then(
    (s) => ({ complete: !s.stopped, truncated: null, error: null }),
    (e: unknown) => ({ complete: false, truncated: null, error: e instanceof Error ? e.message : String(e) }),
  );
  let closed = false;
  return {
    info,
    label,
    schema: info.schema,
    meta: info.meta,
    kind: 'tokens',
    tokens: null,
    notes: [],
    async *items(): AsyncGenerator<StreamItem> {
      let next = 0;
      for await (const e of h) {
        if (e.type === 'batch') {
          yield e.derived === undefined
            ? { kind: 'tokens', batch: e.batch, firstToken: next, memory: [] }
            : { kind: 'tokens', batch: e.batch, firstToken: next, memory: [], derived: e.derived };
          next += e.batch.length;
        } else if (e.type === 'memory') yield { kind: 'memory', sample: e.sample };
        else if (e.type === 'derived') yield { kind: 'derived', derived: e.derived };
      }
      await h.done; // the iterator ends quietly on failure; this rethrows the engine's error
    },
    end: () => ended,
    seek: null,
    close() {
      if (closed) return;
      closed = true;
      void h.stop().catch(() => undefined);
    },
  };
}
