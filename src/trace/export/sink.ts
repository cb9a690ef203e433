/**
 * Output files of the exporters, written to a temporary name in the target's folder and renamed into place only
 * when complete: a failed export (bad trace, full disk) leaves no half-written file behind, and never clobbers an
 * existing one with a partial result, and never writes over the trace it reads (src/core/output.ts).
 */
import { OutputFile } from '../../core/output.js';

/** Bytes or text appended to a temporary file; `close()` renames it to `path`, `abort()` deletes it. */
export class AtomicFile {
  private readonly file: OutputFile;

  constructor(
    readonly path: string,
    inputs: readonly string[] = [],
  ) {
    this.file = OutputFile.create(path, { inputs });
  }

  write(data: string | Uint8Array): void {
    this.file.write(data);
  }

  close(): void {
    this.file.commit();
  }

  abort(): void {
    this.file.abort();
  }
}

/** A text file written line by line, in 1 MiB writes. */
export class TextSink {
  private readonly file: AtomicFile;
  private parts: string[] = [];
  private size = 0;

  constructor(
    readonly path: string,
    inputs: readonly string[] = [],
  ) {
    this.file = new AtomicFile(path, inputs);
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
