/** Flag parsers shared by the command registrations. Bad values become usage errors (exit 2). */
import { InvalidArgumentError } from 'commander';

export function intArg(name: string, min = 0, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string) => {
    if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`${name} must be an integer, got "${v}".`);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} is too large: ${v.trim()}.`);
    if (n < min) throw new InvalidArgumentError(`${name} must be ≥ ${min}, got ${n}.`);
    if (n > max) throw new InvalidArgumentError(`${name} must be ≤ ${max}, got ${n}.`);
    return n;
  };
}

export function floatArg(name: string, min = -Infinity): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${v}".`);
    if (n < min) throw new InvalidArgumentError(`${name} must be ≥ ${min}, got ${n}.`);
    return n;
  };
}

export function choiceArg<T extends string>(name: string, choices: readonly T[]): (v: string) => T {
  return (v: string) => {
    if (!(choices as readonly string[]).includes(v))
      throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got "${v}".`);
    return v as T;
  };
}

/** "5,17,3" → [5, 17, 3]. */
export function intListArg(name: string): (v: string) => number[] {
  return (v: string) => {
    const parts = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p)))
      throw new InvalidArgumentError(`${name} must be a comma-separated list of non-negative integers, got "${v}".`);
    const out = parts.map(Number);
    if (out.some((n) => !Number.isSafeInteger(n))) throw new InvalidArgumentError(`${name} holds a number too large to be an id.`);
    return out;
  };
}
