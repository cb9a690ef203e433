/**
 * Every input file is opened here: a missing path, a folder or an unreadable file is a one-line UserError, and
 * a pipe, FIFO or character device (`moescope stats <(zcat run.arrows.gz)`) is read to its end into an anonymous
 * temporary file first, because the readers seek (pread) — the temporary file is unlinked as soon as it is open,
 * so nothing is left behind, whatever happens next.
 */
import { closeSync, fstatSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError, describeError } from './errors.js';

/** Opens `path` for reading and returns a descriptor that supports positioned reads (pread). */
export function openSeekableInput(path: string, what = 'input'): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${path}: no such file`);
    if (code === 'EISDIR') throw new UserError(`${path} is a folder; give a file`);
    throw new UserError(`cannot read ${what} ${path}: ${describeError(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new UserError(`${path} is a folder; give a file`);
    if (st.isFile()) return fd;
    if (st.isFIFO() || st.isCharacterDevice() || st.isSocket()) {
      const spooled = spool(fd, path);
      closeSync(fd);
      return spooled;
    }
    throw new UserError(`${path} is not a regular file`);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed (spooled) */
    }
    throw e;
  }
}

/** Copies a stream to an unlinked temporary file and returns that file's descriptor. */
function spool(src: number, path: string): number {
  const tmp = join(tmpdir(), `moescope-input-${process.pid}-${randomBytes(4).toString('hex')}`);
  let out: number;
  try {
    out = openSync(tmp, 'wx+', 0o600);
  } catch (e) {
    throw new UserError(`cannot buffer ${path} (a pipe) in ${tmpdir()}: ${describeError(e)}`);
  }
  unlinkSync(tmp); // anonymous from now on: removed by the kernel when closed
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(src, buf, 0, buf.length, null)) > 0; )
      for (let at = 0; at < n; ) at += writeSync(out, buf, at, n - at);
  } catch (e) {
    closeSync(out);
    throw new UserError(`cannot read ${path}: ${describeError(e)}`);
  }
  return out;
}
