/** Flag parsers shared by the command registrations. Bad values become usage errors (exit 2). */
import { InvalidArgumentError, type Command } from 'commander';

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
    const parts = v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p)))
      throw new InvalidArgumentError(`${name} must be a comma-separated list of non-negative integers, got "${v}".`);
    const out = parts.map(Number);
    if (out.some((n) => !Number.isSafeInteger(n)))
      throw new InvalidArgumentError(`${name} holds a number too large to be an id.`);
    return out;
  };
}

/** Flags of the commands that read a dataset (a folder or glob of traces; docs/scale.md). */
export interface DatasetFlags {
  engine?: 'stream' | 'duckdb';
  skipBad?: boolean;
  stepWindow?: number;
  memoryLimit?: string;
  threads?: number;
}

/** DuckDB's size syntax: 512MB, 2GB, 1.5GiB. */
function sizeArg(name: string): (v: string) => string {
  return (v: string) => {
    if (!/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(v.trim()))
      throw new InvalidArgumentError(`${name} must be a size such as 512MB or 2GB, got "${v}".`);
    return v.trim();
  };
}

/** Adds the dataset flags to a command (`stats`, `check`, `diff`, `report`, `plan`). */
export function datasetOptions(cmd: Command): Command {
  return cmd
    .option(
      '--engine <e>',
      'for a folder or glob of traces: stream (one process) or duckdb (default past one file; docs/scale.md)',
      choiceArg('--engine', ['stream', 'duckdb'] as const),
    )
    .option(
      '--skip-bad',
      'a folder or glob: leave out corrupt or foreign files (listed in the result) instead of refusing',
    )
    .option('--step-window <n>', 'a folder or glob: steps per count row (default 1)', intArg('--step-window', 1))
    .option(
      '--memory-limit <size>',
      'DuckDB memory limit; beyond it DuckDB spills to disk (default 1GB)',
      sizeArg('--memory-limit'),
    )
    .option('--threads <n>', 'DuckDB threads (default: every core)', intArg('--threads', 1, 1024));
}
