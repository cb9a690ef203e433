/**
 * The producer's hello line and the listener's answer (docs/live.md § Wire protocol):
 *   → {"moescope": 1, "token": "<T>" | null, "rank": r, "world": w, "host": "…", "pid": n}\n   (≤ 4 KiB)
 *   ← {"ok": true}\n   or   {"ok": false, "error": "…"}\n (then the listener closes)
 * The token is compared in constant time (over SHA-256 digests, so lengths leak nothing either).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { cutMiddle, sanitizeLine } from '../core/sanitize.js';

const PROTOCOL_VERSION = 1;
export const MAX_HELLO_BYTES = 4096;

export interface Hello {
  token: string | null;
  rank: number;
  world: number;
  host: string;
  pid: number;
}

/** A hello that cannot be accepted; `message` is the one line sent back and logged. */
export class HelloError extends Error {}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Parses the hello line (without its `\n`). Throws HelloError. */
export function parseHello(line: Buffer): Hello {
  let raw: unknown;
  try {
    raw = JSON.parse(line.toString('utf8'));
  } catch {
    throw new HelloError('the first line is not a moescope hello (not JSON)');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new HelloError('the first line is not a moescope hello (not a JSON object)');
  const o = raw as Record<string, unknown>;
  if (o.moescope === undefined) throw new HelloError('the first line is not a moescope hello (no "moescope" field)');
  if (o.moescope !== PROTOCOL_VERSION)
    throw new HelloError(
      `protocol version ${JSON.stringify(o.moescope)} is not supported (this listener speaks ${PROTOCOL_VERSION})`,
    );
  if (o.token !== null && o.token !== undefined && typeof o.token !== 'string')
    throw new HelloError('"token" must be a string or null');
  if (!isInt(o.rank) || o.rank < 0 || o.rank > 0xffff)
    throw new HelloError(`"rank" must be an integer 0…65535, got ${JSON.stringify(o.rank)}`);
  const world = o.world ?? o.rank + 1;
  if (!isInt(world) || world < 1 || world <= o.rank)
    throw new HelloError(`"world" must be an integer above rank ${o.rank}, got ${JSON.stringify(o.world)}`);
  const host = typeof o.host === 'string' ? printable(o.host, 255) : '?';
  const pid = isInt(o.pid) ? o.pid : -1;
  return { token: (o.token as string | null | undefined) ?? null, rank: o.rank, world, host, pid };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Whether the hello's token is the expected one (no token expected: any hello passes). */
export function tokenMatches(expected: string | null, given: string | null): boolean {
  if (expected === null) return true;
  if (given === null) return false;
  return timingSafeEqual(digest(expected), digest(given));
}

export function answer(ok: true): Buffer;
export function answer(ok: false, error: string): Buffer;
export function answer(ok: boolean, error?: string): Buffer {
  return Buffer.from(JSON.stringify(ok ? { ok: true } : { ok: false, error }) + '\n', 'utf8');
}

/** Text a remote peer chose, safe for one terminal line (src/core/sanitize.ts), at most `max` characters. */
export function printable(s: string, max = 200): string {
  return cutMiddle(sanitizeLine(s), max);
}
