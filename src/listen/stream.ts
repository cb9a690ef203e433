/**
 * The listener as a RoutingStream (src/core/routing-stream.ts), so the store, the TUI, the recorder and the gate
 * consume it like any other source. Subscribe before starting the listener (`listenStream(listener)` first, then
 * `listener.start()`): the promise resolves with the stream once the first producer's schema arrives.
 *
 * The stream queues what the producers send until the consumer takes it; above HIGH_TOKENS queued it pauses every
 * producer connection (TCP backpressure) and resumes below LOW_TOKENS, so memory stays bounded whatever the
 * consumer's speed. It ends when the listener stops (--exit-when-idle, a signal, close()).
 */
import type { RoutingStream, StreamEnd, StreamItem } from '../core/routing-stream.js';
import type { RoutingSchema } from '../core/batch.js';
import type { StreamMeta } from '../core/stream.js';
import type { Listener } from './listener.js';

const HIGH_TOKENS = 1 << 16;
const LOW_TOKENS = 1 << 14;

export function listenStream(listener: Listener, label = 'listen'): Promise<RoutingStream> {
  const queue: StreamItem[] = [];
  let queued = 0;
  let next = 0;
  let wake: (() => void) | null = null;
  let finished = false;
  const notes: string[] = [];
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  listener.on('batch', ({ batch }) => {
    queue.push({ kind: 'tokens', batch, firstToken: next, memory: [] });
    next += batch.length;
    queued += batch.length;
    if (queued > HIGH_TOKENS) listener.pause();
    poke();
  });
  listener.on('memory', ({ sample }) => {
    queue.push({ kind: 'memory', sample });
    poke();
  });
  listener.on('log', (line) => {
    if (/^refused |connection closed|without end-of-stream/.test(line)) notes.push(line);
  });
  void listener.done.then(() => {
    finished = true;
    poke();
  });
  const end = async (): Promise<StreamEnd> => {
    await listener.done;
    return { complete: listener.ranks().every((r) => r.error === null), truncated: null, error: null };
  };
  return listener.ready.then(({ schema, meta }: { schema: RoutingSchema; meta: StreamMeta }) => ({
    label,
    schema,
    meta,
    kind: 'tokens' as const,
    tokens: null,
    notes,
    async *items() {
      for (;;) {
        const item = queue.shift();
        if (item) {
          if (item.kind === 'tokens') {
            queued -= item.batch.length;
            if (queued < LOW_TOKENS) listener.resume();
          }
          yield item;
          continue;
        }
        if (finished) return;
        await new Promise<void>((res) => (wake = res));
      }
    },
    end,
    seek: null,
    close() {
      void listener.stop();
    },
  }));
}
