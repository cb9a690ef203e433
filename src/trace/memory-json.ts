/**
 * Device-memory samples in a trace: the `mem` column holds, on the first token recorded after one or more
 * samples, the JSON array of those samples (MemorySample with tNs as a decimal string, since JSON has no int64).
 */
import type { GpuMemory, MemorySample } from '../core/memory.js';

export type { TimedMemorySample } from '../core/routing-stream.js';

export function memoryToJson(samples: readonly MemorySample[]): string {
  return JSON.stringify(samples.map((s) => ({ ...s, tNs: s.tNs.toString() })));
}

/** Parses one `mem` cell; `where` names the cell in the error. */
export function memoryFromJson(text: string, where: string): MemorySample[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${where}: mem cell is not valid JSON`);
  }
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((r) => {
    const o = r as { tNs: string | number; gpus: GpuMemory[] | null; hostRssBytes: number; ortBytes: number | null };
    if (typeof o !== 'object' || o === null || o.tNs === undefined) throw new Error(`${where}: mem cell lacks tNs`);
    return {
      tNs: BigInt(o.tNs),
      gpus: o.gpus ?? null,
      hostRssBytes: o.hostRssBytes ?? 0,
      ortBytes: o.ortBytes ?? null,
    };
  });
}
