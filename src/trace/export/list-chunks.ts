/**
 * Parquet column chunks of the per-token matrices (experts, weights, logits), encoded straight from the trace's
 * typed arrays. hyparquet-writer shreds nested columns one JS value at a time (its Dremel encoder took half of
 * `export --parquet`'s CPU time, bench/RESULTS.md); a list column whose rows all hold W values needs none of that:
 * its repetition levels are one 0 and W−1 ones per row, its definition levels all 1, its values the flat array.
 *
 * Layout, as hyparquet-writer wrote these columns before (so readers see the same file shape): a REQUIRED
 * three-level LIST of REQUIRED elements, one DATA_PAGE_V2 per column chunk, levels RLE; the expert ids dictionary
 * encoded (a PLAIN INT32 dictionary page of the ids present, indexes bit-packed), floats PLAIN. Values are not
 * compressed: hyparquet-writer's Snappy (JS) saved 14% of the float32 weights and nothing on the expert indexes of
 * the 100k-token DeepSeek-scale bench trace, for 13 s of CPU — four times the rest of the export. The chunk's metadata goes into hyparquet-writer's row group, which writes the footer.
 */
import type { ParquetWriter } from 'hyparquet-writer';

/** A column chunk's footer entry, as hyparquet-writer's row groups hold it. */
type ColumnChunk = ParquetWriter['row_groups'][number]['columns'][number];
type Stats = NonNullable<NonNullable<ColumnChunk['meta_data']>['statistics']>;

/** Where the chunks go: the file writer's running offset and a write that passes bytes through. */
export interface ChunkOut {
  readonly offset: number;
  writeThrough(bytes: Uint8Array): void;
}

// Parquet enums (parquet.thrift) used by the pages written here.
const PAGE_DICTIONARY = 2;
const PAGE_DATA_V2 = 3;
const ENC_PLAIN = 0;
const ENC_RLE_DICTIONARY = 8;

/** A reusable growable byte buffer (one per writer: a chunk's pages are built here, then written out). */
class Bytes {
  buf = new Uint8Array(1 << 16);
  n = 0;

  reset(): this {
    this.n = 0;
    return this;
  }

  ensure(extra: number): void {
    if (this.n + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + extra));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }

  u8(x: number): void {
    this.ensure(1);
    this.buf[this.n++] = x;
  }

  /** Unsigned LEB128 (Parquet's RLE run headers, Thrift compact varints); exact for x < 2^53. */
  varint(x: number): void {
    this.ensure(8);
    while (x >= 0x80) {
      this.buf[this.n++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.n++] = x;
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}

/** Thrift compact protocol, just what a PageHeader needs: i32 fields, bool fields, nested structs. */
class ThriftOut {
  private last: number[] = [0];

  constructor(private readonly b: Bytes) {}

  private field(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1]!;
    if (delta > 0 && delta <= 15) this.b.u8((delta << 4) | type);
    else {
      this.b.u8(type);
      this.b.varint(((id << 1) ^ (id >> 15)) & 0xffff); // i16 zigzag
    }
    this.last[this.last.length - 1] = id;
  }

  i32(id: number, x: number): this {
    this.field(id, 5);
    this.b.varint(((x << 1) ^ (x >> 31)) >>> 0);
    return this;
  }

  bool(id: number, x: boolean): this {
    this.field(id, x ? 1 : 2);
    return this;
  }

  begin(id: number): this {
    this.field(id, 12);
    this.last.push(0);
    return this;
  }

  end(): this {
    this.b.u8(0);
    this.last.pop();
    return this;
  }
}

/** One RLE run of the hybrid encoding: `count` copies of `value`, in ceil(width/8) bytes (width ≤ 8 here). */
function rleRun(b: Bytes, count: number, value: number): void {
  b.varint(count * 2);
  b.u8(value);
}

/**
 * The repetition then definition levels of `rows` lists of `width` values (DATA_PAGE_V2: RLE, no length prefix,
 * bit width 1): each row starts a record (0) and repeats (1) for its other values; every value is defined (1).
 */
function levels(b: Bytes, rows: number, width: number): { rep: number; def: number } {
  const start = b.n;
  if (width === 1) rleRun(b, rows, 0);
  else
    for (let r = 0; r < rows; r++) {
      rleRun(b, 1, 0);
      rleRun(b, width - 1, 1);
    }
  const rep = b.n - start;
  rleRun(b, rows * width, 1);
  return { rep, def: b.n - start - rep };
}

/** Bit-packs `values` (each < 2^width, width ≤ 16) as one bit-packed run of the hybrid encoding, LSB first. */
function bitPacked(b: Bytes, values: Uint16Array | Uint8Array, n: number, width: number): void {
  const groups = Math.ceil(n / 8);
  b.varint(groups * 2 + 1);
  b.ensure(groups * width);
  const out = b.buf;
  let at = b.n;
  if (width === 8) {
    for (let i = 0; i < n; i++) out[at++] = values[i]!;
    for (let i = n; i < groups * 8; i++) out[at++] = 0;
  } else {
    let acc = 0;
    let bits = 0;
    for (let i = 0; i < groups * 8; i++) {
      acc |= (i < n ? values[i]! : 0) << bits;
      bits += width;
      while (bits >= 8) {
        out[at++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
  }
  b.n = at;
}

/** A DATA_PAGE_V2 header; the page's `size` bytes (levels, then values: both counted) follow it. */
function dataPageHeader(
  b: Bytes,
  rows: number,
  values: number,
  encoding: number,
  lv: { rep: number; def: number },
  size: number,
): void {
  new ThriftOut(b)
    .i32(1, PAGE_DATA_V2)
    .i32(2, size)
    .i32(3, size)
    .begin(8)
    .i32(1, values)
    .i32(2, 0)
    .i32(3, rows)
    .i32(4, encoding)
    .i32(5, lv.def)
    .i32(6, lv.rep)
    .bool(7, false)
    .end()
    .end();
}

/** Writes list column chunks of fixed-width rows into `out`; returns hyparquet's ColumnChunk for the footer. */
export class ListChunkWriter {
  private readonly head = new Bytes();
  private readonly body = new Bytes();
  private f32 = new Float32Array(0);
  private idx = new Uint16Array(0);
  private readonly present = new Uint8Array(65536);
  private readonly slot = new Uint16Array(65536);

  constructor(private readonly out: ChunkOut) {}

  /** `rows` lists of `width` float16 values from `src` (rows × width, from value `from`), widened to FLOAT. */
  floats(name: string, src: Uint16Array, from: number, rows: number, width: number, decode: Float32Array): ColumnChunk {
    const n = rows * width;
    if (this.f32.length < n) this.f32 = new Float32Array(n);
    const f = this.f32;
    // Min / max as Parquet's statistics take them: NaN left out (and counted), a zero minimum as -0, maximum as +0.
    let min = Infinity;
    let max = -Infinity;
    let nans = 0;
    for (let i = 0; i < n; i++) {
      const x = decode[src[from + i]!]!;
      f[i] = x;
      if (x < min) min = x;
      if (x > max) max = x;
      if (x !== x) nans++;
    }
    const lvBytes = this.body.reset();
    const lv = levels(lvBytes, rows, width);
    // PLAIN FLOAT is little-endian IEEE 754: the Float32Array's own bytes on the little-endian hosts Node runs on.
    const values = new Uint8Array(f.buffer, 0, n * 4);
    const start = this.out.offset;
    const head = this.head.reset();
    dataPageHeader(head, rows, n, ENC_PLAIN, lv, lvBytes.n + values.length);
    this.out.writeThrough(head.view());
    this.out.writeThrough(lvBytes.view());
    this.out.writeThrough(values);
    // nan_count as hyparquet-writer records it for its own float columns (its Statistics type does not list it).
    const stats: Stats = Object.assign({ null_count: 0n }, { nan_count: BigInt(nans) });
    if (nans < n) Object.assign(stats, { min_value: min === 0 ? -0 : min, max_value: max === 0 ? 0 : max });
    return this.chunk(name, 'FLOAT', ['PLAIN', 'RLE'], n, start, start, stats);
  }

  /** `rows` lists of `width` uint16 ids from `src`, dictionary encoded (the dictionary: the ids present, ascending). */
  ids(name: string, src: Uint16Array, from: number, rows: number, width: number): ColumnChunk {
    const n = rows * width;
    const { present, slot } = this;
    present.fill(0);
    for (let i = 0; i < n; i++) present[src[from + i]!] = 1;
    const dict: number[] = [];
    for (let v = 0; v < 65536; v++) if (present[v]) (slot[v] = dict.length), dict.push(v);
    if (this.idx.length < n) this.idx = new Uint16Array(n);
    const idx = this.idx;
    for (let i = 0; i < n; i++) idx[i] = slot[src[from + i]!]!;
    const width2 = Math.max(1, Math.ceil(Math.log2(dict.length)));

    const start = this.out.offset;
    // Dictionary page: the ids as PLAIN INT32.
    const body = this.body.reset();
    body.ensure(dict.length * 4);
    const dv = new DataView(body.buf.buffer, body.buf.byteOffset);
    for (const [i, v] of dict.entries()) dv.setInt32(i * 4, v, true);
    body.n = dict.length * 4;
    const head = this.head.reset();
    new ThriftOut(head)
      .i32(1, PAGE_DICTIONARY)
      .i32(2, body.n)
      .i32(3, body.n)
      .begin(7)
      .i32(1, dict.length)
      .i32(2, ENC_PLAIN)
      .bool(3, true)
      .end()
      .end();
    this.out.writeThrough(head.view());
    this.out.writeThrough(body.view());

    const dataStart = this.out.offset;
    body.reset();
    const lv = levels(body, rows, width);
    body.u8(width2);
    bitPacked(body, idx, n, width2);
    head.reset();
    dataPageHeader(head, rows, n, ENC_RLE_DICTIONARY, lv, body.n);
    this.out.writeThrough(head.view());
    this.out.writeThrough(body.view());
    return this.chunk(name, 'INT32', ['PLAIN', 'RLE', 'RLE_DICTIONARY'], n, start, dataStart, {
      min_value: dict[0]!,
      max_value: dict[dict.length - 1]!,
      null_count: 0n,
    });
  }

  private chunk(
    name: string,
    type: 'INT32' | 'FLOAT',
    encodings: ('PLAIN' | 'RLE' | 'RLE_DICTIONARY')[],
    values: number,
    start: number,
    dataStart: number,
    statistics: Stats,
  ): ColumnChunk {
    const size = BigInt(this.out.offset - start);
    return {
      file_offset: BigInt(start),
      meta_data: {
        type,
        encodings,
        path_in_schema: [name, 'list', 'element'],
        codec: 'UNCOMPRESSED',
        num_values: BigInt(values),
        total_uncompressed_size: size,
        total_compressed_size: size,
        data_page_offset: BigInt(dataStart),
        ...(dataStart !== start ? { dictionary_page_offset: BigInt(start) } : {}),
        statistics,
      },
    };
  }
}
