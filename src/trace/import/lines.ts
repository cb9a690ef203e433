/** Lines of a text file, read in 1 MiB chunks (multi-GB dumps never sit in memory whole). */
import { closeSync, readSync } from 'node:fs';
import { openSeekableInput } from '../../core/input.js';
import { StringDecoder } from 'node:string_decoder';
import { UserError, describeError } from '../../core/errors.js';

export interface Line {
  text: string;
  /** 1-based line number. */
  no: number;
}

/** Opens an input file for reading, or a UserError naming it. */
export function openInput(path: string): number {
  return openSeekableInput(path); // folders refused, pipes buffered (src/core/input.ts)
}

export function* readLines(path: string): Generator<Line> {
  const fd = openInput(path);
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    const dec = new StringDecoder('utf8');
    let rest = '';
    let no = 0;
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      const parts = (rest + dec.write(buf.subarray(0, n))).split('\n');
      rest = parts.pop()!;
      for (const p of parts) yield { text: p.endsWith('\r') ? p.slice(0, -1) : p, no: ++no };
    }
    rest += dec.end();
    if (rest !== '') yield { text: rest.endsWith('\r') ? rest.slice(0, -1) : rest, no: ++no };
  } finally {
    closeSync(fd);
  }
}

/** JSON.parse of a line, or a UserError naming file and line. */
export function parseLine(path: string, line: Line): unknown {
  try {
    return JSON.parse(line.text);
  } catch (e) {
    throw new UserError(`${path}:${line.no}: not valid JSON (${describeError(e)})`);
  }
}
