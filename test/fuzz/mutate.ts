/**
 * A seeded mutator: the same (seed file, case number) always gives the same mutant, so a failing case is
 * reproduced by its number. Binary inputs get byte flips, extreme int32/int64 stamps (biased toward message
 * headers: that is where a file declares its sizes), cuts, duplicated and deleted ranges; text inputs get
 * JSON-aware edits (extreme numbers, renamed / deleted keys, wrong types, escape sequences, huge strings) and
 * line-level ones (duplicate, delete, swap, cut).
 */
import type { Rng } from '../../src/trace/rng.js';

const INT32 = [0, -1, 0x7fffffff, -0x80000000, 0x10000, 100_000_000, 0xffff, 7];
const INT64: bigint[] = [2n ** 53n + 1n, 2n ** 63n - 1n, -1n, 2n ** 32n, 10n ** 12n, 2n ** 62n];
const JSON_VALUES: unknown[] = [
  1e308,
  -1,
  4294967296,
  100000000,
  65536,
  0,
  -0,
  1.5,
  // biome-ignore lint/correctness/noPrecisionLoss: 2^53 + 1 on purpose: an id no float64 holds exactly
  9007199254740993,
  1e-320,
  'x',
  null,
  [],
  {},
  true,
  'evil\u001b]0;title\u0007\u202e',
  'NaN',
  'Infinity',
  [[3, 3]],
  [1e308],
];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/** Offsets of the Arrow IPC messages (continuation markers) in `b`: where metadata lives. */
function messageStarts(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 8 <= b.length; i += 8)
    if (b[i] === 0xff && b[i + 1] === 0xff && b[i + 2] === 0xff && b[i + 3] === 0xff) out.push(i);
  return out;
}

export function mutateBinary(seed: Uint8Array, rng: Rng): Uint8Array {
  let b: Uint8Array = Uint8Array.from(seed);
  const starts = messageStarts(seed);
  const pos = (align: number): number => {
    // Half the time inside a message header (the first 256 bytes after a marker).
    const base = starts.length && rng.int(2) === 0 ? pick(rng, starts) + rng.int(256) : rng.int(Math.max(1, b.length));
    return Math.min(Math.max(0, b.length - 8), base - (base % align));
  };
  const ops = 1 + rng.int(3);
  for (let o = 0; o < ops && b.length > 0; o++) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    switch (rng.int(6)) {
      case 0:
        for (let k = 1 + rng.int(8); k > 0; k--) b[rng.int(b.length)] ^= 1 << rng.int(8);
        break;
      case 1:
        if (b.length >= 4) dv.setInt32(pos(4), pick(rng, INT32), true);
        break;
      case 2:
        if (b.length >= 8) dv.setBigInt64(pos(8), pick(rng, INT64), true);
        break;
      case 3:
        b = b.subarray(0, rng.int(b.length));
        break;
      case 4: {
        const a = rng.int(b.length);
        const len = Math.min(b.length - a, 1 + rng.int(4096));
        const at = rng.int(b.length);
        const out = new Uint8Array(b.length + len);
        out.set(b.subarray(0, at));
        out.set(b.subarray(a, a + len), at);
        out.set(b.subarray(at), at + len);
        b = out;
        break;
      }
      default: {
        const a = rng.int(b.length);
        const len = Math.min(b.length - a, 1 + rng.int(4096));
        const out = new Uint8Array(b.length - len);
        out.set(b.subarray(0, a));
        out.set(b.subarray(a + len), a);
        b = out;
      }
    }
  }
  return b;
}

type Json = unknown;

/** Every (parent, key) in a JSON value. */
function slots(
  v: Json,
  out: [Record<string, Json> | Json[], string | number][] = [],
): [Record<string, Json> | Json[], string | number][] {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), slots(x, out)));
  else if (v && typeof v === 'object')
    for (const k of Object.keys(v))
      out.push([v as Record<string, Json>, k]), slots((v as Record<string, Json>)[k], out);
  return out;
}

function mutateJson(doc: Json, rng: Rng): Json {
  const all = slots(doc);
  if (all.length === 0) return pick(rng, JSON_VALUES);
  const [parent, key] = pick(rng, all);
  const rec = parent as Record<string | number, Json>;
  switch (rng.int(5)) {
    case 0:
    case 1:
      rec[key] = pick(rng, JSON_VALUES);
      break;
    case 2:
      if (Array.isArray(parent))
        parent.splice(key as number, 0, parent[key as number]); // repeat an element
      else {
        rec[`${key}x`] = rec[key]; // a misspelt key
        delete rec[key];
      }
      break;
    case 3:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete rec[key];
      break;
    default:
      rec[key] = 'y'.repeat(100_000);
  }
  return doc;
}

export function mutateText(seed: string, rng: Rng): string {
  // A single JSON document (config, weights): edit it as JSON most of the time.
  let whole: Json | undefined;
  try {
    whole = JSON.parse(seed);
  } catch {
    whole = undefined;
  }
  if (whole !== undefined && rng.int(4) !== 0) return JSON.stringify(mutateJson(whole, rng), null, 1);
  const lines = seed.split('\n');
  const ops = 1 + rng.int(3);
  for (let o = 0; o < ops; o++) {
    if (lines.length === 0) lines.push('');
    const i = rng.int(lines.length);
    switch (rng.int(7)) {
      case 0:
      case 1:
      case 2: {
        try {
          lines[i] = JSON.stringify(mutateJson(JSON.parse(lines[i]!), rng));
        } catch {
          lines[i] = `${lines[i]}\u001b[2J`;
        }
        break;
      }
      case 3:
        lines.splice(i, 0, lines[i]!); // a repeated record
        break;
      case 4:
        lines.splice(i, 1);
        break;
      case 5: {
        const j = rng.int(lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        break;
      }
      default:
        lines[i] = lines[i]!.slice(0, rng.int(lines[i]!.length + 1));
    }
  }
  return lines.join('\n');
}
