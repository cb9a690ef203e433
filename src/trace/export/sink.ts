/**
 * Output files of the exporters, written to a temporary name in the target's folder and renamed into place only
 * when complete: a failed export (bad trace, full disk) leaves no half-written file behind, and never clobbers an
 * existing one with a partial result.
 */
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError, describeError } from '../../core/errors.js';

/** Bytes or text appended to a temporary file; `close()` renames it to `path`, `abort()` deletes it. */
export class AtomicFile {
  private readonly tmp: string;
  private fd: number | null;

  constructor(readonly path: string) {
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
    try {
      this.fd = openSync(this.tmp, 'w');
    } catch (e) {
      throw new UserError(`cannot create ${path}: ${describeError(e)}`);
    }
  }

  write(data: string | Uint8Array): void {
    try {
      if (typeof data === 'string') writeSync(this.fd!, data);
      else for (let at = 0; at < data.length; ) at += writeSync(this.fd!, data, at, data.length - at);
    } catch (e) {
      throw new UserError(`cannot write ${this.path}: ${describeError(e)}`);
    }
  }

  close(): void {
    try {
      closeSync(this.fd!);
      this.fd = null;
      renameSync(this.tmp, this.path);
    } catch (e) {
      this.abort();
      throw new UserError(`cannot write ${this.path}: ${describeError(e)}`);
    }
  }

  abort(): void {
    try {
      if (this.fd !== null) closeSync(this.fd);
    } catch {
      /* closing is best effort: the file is being discarded */
    }
    this.fd = null;
    try {
      unlinkSync(this.tmp);
    } catch {
      /* already gone */
    }
  }
}

/** A text file written line by line, in 1 MiB writes. */
export class TextSink {
  private readonly file: AtomicFile;
  private parts: string[] = [];
  private size = 0;

  constructor(readonly path: string) {
    this.file = new AtomicFile(path);
  }

  line(text: string): void {
    this.parts.push(text, '\n');
    this.size += text.length + 1;
    if (this.size >= 1 << 20) this.flush();
  }

  close(): void {
    this.flush();
    this.file.close();
  }

  abort(): void {
    this.file.abort();
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    this.file.write(this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}
