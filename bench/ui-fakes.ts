/** Terminal stand-ins for the UI benchmarks: a TTY stdout that reports writes, and a raw-mode-capable stdin. */
import { EventEmitter } from 'node:events';

export class FakeTty extends EventEmitter {
  isTTY = true;
  writable = true;
  bytes = 0;
  private waiter: (() => void) | null = null;
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  write(s: string, cb?: () => void): boolean {
    this.bytes += s.length;
    const w = this.waiter;
    this.waiter = null;
    w?.();
    if (cb) setImmediate(cb);
    return true;
  }
  nextWrite(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = null;
        resolve(false);
      }, timeoutMs);
      this.waiter = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
  }
}

/** Enough of a TTY stdin for Ink's raw-mode input handling. */
export class FakeStdin extends EventEmitter {
  isTTY = true;
  setRawMode(): this {
    return this;
  }
  setEncoding(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  read(): null {
    return null;
  }
}
