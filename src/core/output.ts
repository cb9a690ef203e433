/**
 * Every file moescope writes goes through here (report, check / diff --output, export, import, synth, instrument,
 * recordings). The policy (docs/architecture.md#output-files):
 *
 * - **Never an input.** An output that is the same file as an input of the command (same device and inode: a hard
 *   link, a symlink or another spelling of the path) is refused before anything is read or written.
 * - **Complete or nothing.** Bytes go to a temporary file beside the target (`.NAME.PID.RAND.partial`), renamed
 *   over the target only when complete; a failure, an abort, an exception, `exit`, SIGINT, SIGTERM or SIGHUP
 *   removes the temporary file. An existing regular file is replaced (atomically) and keeps its permission bits.
 * - **Symlinks are followed.** An output path that is a symlink writes the file it points to (the link stays); a
 *   link to nothing is refused.
 * - **Devices and FIFOs are written directly** (`-o /dev/stdout`, `-o /dev/null`, a named pipe): there is nothing
 *   to rename over. A folder is refused.
 * - Direct (non-atomic) files, for recordings that others follow while they grow, get the same checks.
 */
import {
  closeSync,
  fchmodSync,
  lstatSync,
  openSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError, describeError } from './errors.js';

export interface OutputTarget {
  /** The path as the user gave it (for messages). */
  readonly path: string;
  /** Where bytes go: the path with symlinks resolved (a new file: its resolved folder + name). */
  readonly real: string;
  /** 'new': nothing there yet; 'file': a regular file to be replaced; 'special': a device or FIFO, written directly. */
  readonly kind: 'new' | 'file' | 'special';
  /** Permission bits of the file being replaced. */
  readonly mode: number | null;
}

function statOrNull(path: string, follow: boolean): Stats | null {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch {
    return null;
  }
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Checks an output path against the policy above and the command's inputs; throws a UserError naming the problem.
 * `what` names the output in messages (e.g. "--output", "report").
 */
export function resolveOutput(path: string, inputs: readonly string[] = [], what = 'output'): OutputTarget {
  if (path === '') throw new UserError(`${what}: the path is empty`);
  const link = statOrNull(path, false);
  const st = statOrNull(path, true);
  if (link && !st) throw new UserError(`${what} ${path} is a symlink to a missing file; refusing to write through it`);
  if (st) {
    if (st.isDirectory()) throw new UserError(`${what} ${path} is a folder; give a file name`);
    for (const input of inputs) {
      const ist = statOrNull(input, true);
      if (ist && sameFile(st, ist))
        throw new UserError(
          input === path
            ? `${what} ${path} is also an input; refusing to overwrite it (choose another output)`
            : `${what} ${path} is the same file as the input ${input}; refusing to overwrite it (choose another output)`,
        );
    }
    if (!st.isFile()) return { path, real: path, kind: 'special', mode: null };
    let real: string;
    try {
      real = realpathSync(path);
    } catch (e) {
      throw new UserError(`cannot write ${path}: ${describeError(e)}`);
    }
    return { path, real, kind: 'file', mode: st.mode & 0o7777 };
  }
  const dir = dirname(resolve(path));
  const dst = statOrNull(dir, true);
  if (!dst) throw new UserError(`cannot write ${path}: the folder ${dirname(path)} does not exist`);
  if (!dst.isDirectory()) throw new UserError(`cannot write ${path}: ${dirname(path)} is not a folder`);
  let realDir = dir;
  try {
    realDir = realpathSync(dir);
  } catch {
    /* keep the resolved path */
  }
  return { path, real: join(realDir, basename(path)), kind: 'new', mode: null };
}

/** Open temporary files, removed on exit and on the signals that end a process. */
const live = new Set<OutputFile>();
let hooked = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function cleanupAll(): void {
  for (const f of [...live]) f.abort();
}

function onSignal(sig: NodeJS.Signals): void {
  cleanupAll();
  unhook();
  // With no other listener, end the process as the signal would have (exit status 128 + n).
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

const handlers = new Map<NodeJS.Signals, () => void>(SIGNALS.map((s) => [s, () => onSignal(s)]));

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupAll);
  for (const [s, h] of handlers) process.on(s, h);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.off('exit', cleanupAll);
  for (const [s, h] of handlers) process.off(s, h);
}

/**
 * A file written through a temporary file and renamed into place by `commit()` (or, for a device / FIFO, written
 * directly). `abort()` removes the temporary file; both are idempotent.
 */
export class OutputFile {
  readonly target: OutputTarget;
  /** The file being written: the temporary file (or the device itself). */
  readonly tempPath: string;
  private fdValue: number | null;
  private done = false;

  private constructor(target: OutputTarget) {
    this.target = target;
    this.tempPath =
      target.kind === 'special'
        ? target.real
        : join(
            dirname(target.real),
            `.${basename(target.real)}.${process.pid}.${randomBytes(3).toString('hex')}.partial`,
          );
    // The signal handlers go in before the file exists: a signal arriving in between would otherwise take the
    // default action and leave the temporary file behind (handlers run only when the event loop next turns, by
    // which time the file is registered below).
    if (target.kind !== 'special') hook();
    try {
      this.fdValue = openSync(this.tempPath, target.kind === 'special' ? 'w' : 'wx', 0o666);
    } catch (e) {
      if (live.size === 0) unhook();
      throw new UserError(`cannot create ${target.path}: ${describeError(e)}`);
    }
    if (target.kind !== 'special') {
      live.add(this);
      if (target.mode !== null) {
        try {
          fchmodSync(this.fdValue, target.mode);
        } catch {
          /* keeping the old mode is a courtesy */
        }
      }
    }
  }

  /** Opens `path` for writing after checking it against the policy and `inputs`. */
  static create(path: string, opts: { inputs?: readonly string[]; what?: string } = {}): OutputFile {
    return new OutputFile(resolveOutput(path, opts.inputs ?? [], opts.what));
  }

  get path(): string {
    return this.target.path;
  }

  /** The descriptor to write to (for writers that batch their own writes). */
  get fd(): number {
    if (this.fdValue === null) throw new Error(`output ${this.target.path} is closed`);
    return this.fdValue;
  }

  get closed(): boolean {
    return this.fdValue === null;
  }

  write(data: string | Uint8Array): void {
    const fd = this.fd;
    try {
      if (typeof data === 'string') {
        const b = Buffer.from(data, 'utf8');
        for (let at = 0; at < b.length; ) at += writeSync(fd, b, at, b.length - at);
      } else for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
    } catch (e) {
      throw new UserError(`cannot write ${this.target.path}: ${describeError(e)}`);
    }
  }

  /** Closes and renames into place. Returns whether an existing file was replaced. */
  commit(): { replaced: boolean } {
    if (this.done) return { replaced: this.target.kind === 'file' };
    const fd = this.fd;
    try {
      closeSync(fd);
      this.fdValue = null;
      if (this.target.kind !== 'special') {
        // Between the check and now the target may have become an input's hard link or a folder: check again.
        const st = statOrNull(this.target.real, true);
        if (st?.isDirectory()) throw new Error('it is now a folder');
        renameSync(this.tempPath, this.target.real);
      }
    } catch (e) {
      this.abort();
      throw new UserError(`cannot write ${this.target.path}: ${describeError(e)}`);
    }
    this.done = true;
    live.delete(this);
    if (live.size === 0) unhook();
    return { replaced: this.target.kind === 'file' };
  }

  /** Stops and removes the temporary file; nothing is left at the target. */
  abort(): void {
    if (this.fdValue !== null) {
      try {
        closeSync(this.fdValue);
      } catch {
        /* being discarded */
      }
      this.fdValue = null;
    }
    if (!this.done && this.target.kind !== 'special') {
      try {
        unlinkSync(this.tempPath);
      } catch {
        /* already gone */
      }
    }
    this.done = true;
    live.delete(this);
    if (live.size === 0) unhook();
  }
}

/** Writes a whole file through the policy above. */
export function writeOutputFile(
  path: string,
  data: string | Uint8Array,
  opts: { inputs?: readonly string[]; what?: string } = {},
): { replaced: boolean } {
  const f = OutputFile.create(path, opts);
  try {
    f.write(data);
    return f.commit();
  } catch (e) {
    f.abort();
    throw e;
  }
}
