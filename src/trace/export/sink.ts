/** A text file written in 1 MiB writes, to a temporary name renamed into place only when complete. */
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError, describeError } from '../../core/errors.js';

export class TextSink {
  private readonly tmp: string;
  private fd: number;
  private parts: string[] = [];
  private size = 0;

  constructor(readonly path: string) {
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
    try {
      this.fd = openSync(this.tmp, 'w');
    } catch (e) {
      throw new UserError(`cannot create ${path}: ${describeError(e)}`);
    }
  }

  line(text: string): void {
    this.parts.push(text, '\n');
    this.size += text.length + 1;
    if (this.size >= 1 << 20) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
  }

  abort(): void {
    try {
      closeSync(this.fd);
    } finally {
      try {
        unlinkSync(this.tmp);
      } catch {
        /* already gone */
      }
    }
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    try {
      writeSync(this.fd, this.parts.join(''));
    } catch (e) {
      throw new UserError(`cannot write ${this.path}: ${describeError(e)}`);
    }
    this.parts = [];
    this.size = 0;
  }
}
