/**
 * A read-only ZIP reader for the archives `torch.save` writes (PKWARE APPNOTE 6.3: end of central directory,
 * ZIP64 records, central directory, local headers). torch stores entries uncompressed and 64-byte aligned;
 * deflated entries (an archive re-zipped by hand) are inflated with a hard output limit. Every offset and size is
 * checked against the file before anything is read or allocated, so a truncated or hostile archive ends in one
 * UserError line, never in a read past the end or an allocation the file does not back.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { UserError, describeError } from '../../../core/errors.js';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  headerOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CEN_SIG = 0x02014b50;
const LOC_SIG = 0x04034b50;
const MAX_ENTRIES = 1 << 20;
const MAX_INFLATED = 256 << 20;

export class ZipReader {
  readonly path: string;
  readonly size: number;
  readonly entries = new Map<string, ZipEntry>();
  private fd: number | null;

  constructor(path: string) {
    this.path = path;
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(code === 'ENOENT' ? `${path}: no such file` : `cannot open ${path}: ${describeError(e)}`);
    }
    try {
      this.size = fstatSync(this.fd).size;
      this.readDirectory();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private bad(why: string): never {
    throw new UserError(`${this.path}: not a readable torch.save file: ${why}`);
  }

  /** Reads exactly `length` bytes at `position`, or fails naming the archive as truncated. */
  private read(position: number, length: number): Buffer {
    if (position < 0 || length < 0 || position + length > this.size)
      this.bad(`truncated (needs bytes ${position}…${position + length} of ${this.size})`);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd!, buf, done, length - done, position + done);
      if (n === 0) this.bad('truncated while reading');
      done += n;
    }
    return buf;
  }

  private readDirectory(): void {
    if (this.size < 22) this.bad(this.size === 0 ? 'empty file' : 'too short for a zip archive');
    const tailLen = Math.min(this.size, 22 + 0xffff);
    const tail = this.read(this.size - tailLen, tailLen);
    let at = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG) {
        at = i;
        break;
      }
    }
    if (at < 0) {
      if (tail.subarray(0, 2).toString('latin1') === 'PK' || this.read(0, 2).toString('latin1') === 'PK')
        this.bad('zip archive cut short (no end-of-central-directory record)');
      this.bad('not a zip archive (torch.save writes one since PyTorch 1.6; older pickle-only files are not read)');
    }
    let count = tail.readUInt16LE(at + 10);
    let cdSize = tail.readUInt32LE(at + 12);
    let cdOffset = tail.readUInt32LE(at + 16);
    const eocdPos = this.size - tailLen + at;
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      if (eocdPos < 20) this.bad('ZIP64 locator missing');
      const loc = this.read(eocdPos - 20, 20);
      if (loc.readUInt32LE(0) !== ZIP64_LOCATOR_SIG) this.bad('ZIP64 locator missing');
      const z64 = Number(loc.readBigUInt64LE(8));
      const rec = this.read(z64, 56);
      if (rec.readUInt32LE(0) !== ZIP64_EOCD_SIG) this.bad('bad ZIP64 end-of-central-directory record');
      count = safeNumber(rec.readBigUInt64LE(32), 'entry count', this);
      cdSize = safeNumber(rec.readBigUInt64LE(40), 'directory size', this);
      cdOffset = safeNumber(rec.readBigUInt64LE(48), 'directory offset', this);
    }
    if (count > MAX_ENTRIES) this.bad(`${count} entries (more than ${MAX_ENTRIES})`);
    if (cdOffset + cdSize > this.size) this.bad('truncated (central directory past the end of the file)');
    const cd = this.read(cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CEN_SIG) this.bad('corrupt central directory');
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let headerOffset = cd.readUInt32LE(p + 42);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) this.bad('corrupt central directory');
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // ZIP64 extended information: the 64-bit values, in this order, of whichever fields are 0xffffffff.
      let e = p + 46 + nameLen;
      const end = e + extraLen;
      while (e + 4 <= end) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          const take = (): number => {
            if (q + 8 > e + 4 + len) this.bad('corrupt ZIP64 extra field');
            const v = safeNumber(cd.readBigUInt64LE(q), 'size', this);
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (headerOffset === 0xffffffff) headerOffset = take();
        }
        e += 4 + len;
      }
      if (flags & 1) this.bad(`entry ${name} is encrypted`);
      if (method !== 0 && method !== 8)
        this.bad(`entry ${name} uses compression method ${method} (stored and deflate are read)`);
      if (headerOffset + 30 + compressedSize > this.size)
        this.bad(`truncated (entry ${name} lies past the end of the file)`);
      this.entries.set(name, { name, method, compressedSize, size, headerOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** The bytes of entry `name`, refusing entries larger than `maxBytes` before reading them. */
  readEntry(name: string, maxBytes: number): Buffer {
    const e = this.entries.get(name);
    if (!e) this.bad(`no entry ${name}`);
    if (e.size > maxBytes) this.bad(`entry ${name} holds ${e.size} bytes (at most ${maxBytes} are read)`);
    const loc = this.read(e.headerOffset, 30);
    if (loc.readUInt32LE(0) !== LOC_SIG) this.bad(`corrupt local header of ${name}`);
    const dataAt = e.headerOffset + 30 + loc.readUInt16LE(26) + loc.readUInt16LE(28);
    const raw = this.read(dataAt, e.compressedSize);
    if (e.method === 0) {
      if (e.compressedSize !== e.size) this.bad(`stored entry ${name} has two sizes`);
      return raw;
    }
    // torch.save stores entries uncompressed; a deflated one (an archive re-zipped by hand) may not inflate past
    // MAX_INFLATED bytes whatever its header claims (a zip bomb's header can claim anything).
    if (e.size > MAX_INFLATED)
      this.bad(`deflated entry ${name} claims ${e.size} bytes (at most ${MAX_INFLATED} are inflated)`);
    try {
      const out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      if (out.length !== e.size) this.bad(`entry ${name} inflates to ${out.length} bytes, not ${e.size}`);
      return out;
    } catch (err) {
      if (err instanceof UserError) throw err;
      this.bad(`entry ${name} does not inflate (${describeError(err)})`);
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function safeNumber(v: bigint, what: string, z: ZipReader): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v > BigInt(z.size) * 2n + 0xffffn)
    throw new UserError(`${z.path}: not a readable torch.save file: ZIP64 ${what} ${v} is larger than the file`);
  return Number(v);
}
