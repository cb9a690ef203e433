/**
 * Reading ONNX models with protobufjs and ONNX's own onnx.proto, plus the one edit moescope makes: appending
 * bytes that add graph outputs / nodes / metadata without decoding and re-encoding the model (protobuf merges a
 * repeated field that appears twice, so `ModelProto{graph{output…}}` appended to the file extends the graph).
 */
import { f16ToF32 } from '../core/f16.js';
import { existsSync, readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { dirname, join, resolve, isAbsolute } from 'node:path';
import protobuf from 'protobufjs';
import { UserError, describeError } from '../core/errors.js';
import { ONNX_PROTO } from './onnx-proto.js';

/** int64 fields decode as Long objects (the `long` package is installed) or plain numbers. */
export type Int64 = number | { toNumber(): number };

export interface OnnxStringEntry {
  key: string;
  value: string;
}

export interface OnnxTensor {
  name: string;
  dims: Int64[];
  data_type: number;
  raw_data?: Uint8Array;
  float_data: number[];
  int32_data: number[];
  int64_data: Int64[];
  double_data: number[];
  data_location?: number;
  external_data: OnnxStringEntry[];
}

export interface OnnxAttribute {
  name: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: OnnxTensor;
  g?: OnnxGraph;
  floats: number[];
  ints: Int64[];
  graphs: OnnxGraph[];
}

export interface OnnxNode {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  attribute: OnnxAttribute[];
  metadata_props: OnnxStringEntry[];
}

export interface OnnxValueInfo {
  name: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim: { dim_value?: Int64; dim_param?: string }[] } } };
}

export interface OnnxGraph {
  name: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  value_info: OnnxValueInfo[];
}

export interface OnnxModel {
  ir_version?: Int64;
  producer_name?: string;
  producer_version?: string;
  opset_import: { domain?: string; version?: Int64 }[];
  graph?: OnnxGraph;
  metadata_props: OnnxStringEntry[];
}

/** ONNX TensorProto.DataType values moescope cares about. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

/** Bytes per element (packed 4-bit types count as ½). */
const ELEM_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  14: 8,
  15: 16,
  16: 2,
  17: 1,
  18: 1,
  19: 1,
  20: 1,
  21: 0.5,
  22: 0.5,
  23: 0.5,
};

export function toNum(v: Int64 | undefined | null): number {
  if (v == null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

interface ProtoTypes {
  Model: protobuf.Type;
  Graph: protobuf.Type;
}
let protoTypes: ProtoTypes | null = null;

function types(): ProtoTypes {
  if (!protoTypes) {
    const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
    protoTypes = { Model: root.lookupType('onnx.ModelProto'), Graph: root.lookupType('onnx.GraphProto') };
  }
  return protoTypes;
}

const GRAPH_FIELD = 7;
const GRAPH_REPEATED = [
  'node',
  'initializer',
  'input',
  'output',
  'value_info',
  'sparse_initializer',
  'quantization_annotation',
  'metadata_props',
];

/**
 * Decode with protobuf's merge semantics for the graph field. protobufjs replaces an embedded message that occurs
 * twice instead of merging it, so the graph occurrences (the model's, then any appended by instrumentation) are
 * decoded one by one and their repeated fields concatenated — what onnxruntime's C++ protobuf does.
 */
function decodeMerged(bytes: Uint8Array): OnnxModel {
  const { Model, Graph } = types();
  const reader = protobuf.Reader.create(bytes);
  const graphs: Uint8Array[] = [];
  const rest: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    if (tag >>> 3 === GRAPH_FIELD && (tag & 7) === 2) {
      const len = reader.uint32();
      graphs.push(bytes.subarray(reader.pos, reader.pos + len));
      reader.skip(len);
    } else {
      reader.skipType(tag & 7);
      rest.push(bytes.subarray(start, reader.pos));
    }
  }
  const model = Model.decode(Buffer.concat(rest)) as unknown as OnnxModel;
  let graph: OnnxGraph | undefined;
  for (const g of graphs) {
    const part = Graph.decode(g) as unknown as Record<string, unknown>;
    if (!graph) {
      graph = part as unknown as OnnxGraph;
      continue;
    }
    const into = graph as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(part)) {
      if (GRAPH_REPEATED.includes(k)) into[k] = [...((into[k] as unknown[]) ?? []), ...(v as unknown[])];
      else into[k] = v;
    }
  }
  if (graph) model.graph = graph;
  return model;
}

/** Decode ModelProto bytes; throws UserError naming `label` when they are not an ONNX model. */
export function decodeModel(bytes: Uint8Array, label: string): OnnxModel {
  let m: OnnxModel;
  try {
    m = decodeMerged(bytes);
  } catch (e) {
    throw new UserError(`${label} is not a valid ONNX model (protobuf decode failed: ${describeError(e)}).`);
  }
  // Random bytes sometimes decode "successfully" into a few stray fields; a real model has a graph with nodes.
  if (!m.graph || m.graph.node.length === 0 || toNum(m.ir_version) <= 0)
    throw new UserError(`${label} is not a valid ONNX model (no graph or IR version in it).`);
  return m;
}

export function encodeModel(m: unknown): Uint8Array {
  const T = types().Model;
  return T.encode(T.fromObject(m as Record<string, unknown>)).finish();
}

export function tensorBytes(t: OnnxTensor): number {
  const n = t.dims.reduce<number>((a, d) => a * toNum(d), 1);
  return n * (ELEM_BYTES[t.data_type] ?? 4);
}

function externalLocation(t: OnnxTensor): string | null {
  if (t.data_location !== 1) return null;
  return t.external_data.find((e) => e.key === 'location')?.value ?? null;
}

/** A decoded model and the bytes it came from (kept for the byte-append edit). */
export interface LoadedModel {
  path: string;
  dir: string;
  bytes: Buffer;
  model: OnnxModel;
  graph: GraphIndex;
  /** External data files the initializers point at (relative to dir), in first-use order. */
  externalFiles: string[];
}

/** Resolve MODEL: a file, or a directory holding model.onnx. */
export function resolveModelPath(path: string): string {
  const p = resolve(path);
  if (!existsSync(p)) throw new UserError(`model not found: ${path}`);
  if (statSync(p).isDirectory()) {
    const inner = join(p, 'model.onnx');
    if (!existsSync(inner)) throw new UserError(`${path} is a directory without a model.onnx in it.`);
    return inner;
  }
  return p;
}

export function loadModel(path: string): LoadedModel {
  const file = resolveModelPath(path);
  const size = statSync(file).size;
  if (size === 0) throw new UserError(`${path} is empty, not an ONNX model.`);
  const bytes = readFileSync(file);
  const model = decodeModel(bytes, path);
  const dir = dirname(file);
  const externalFiles: string[] = [];
  for (const t of model.graph!.initializer) {
    const loc = externalLocation(t);
    if (loc && !externalFiles.includes(loc)) externalFiles.push(loc);
  }
  for (const loc of externalFiles) {
    const p = isAbsolute(loc) ? loc : join(dir, loc);
    if (!existsSync(p))
      throw new UserError(`${path} keeps its weights in external data "${loc}", which is missing beside it.`);
  }
  return { path: file, dir, bytes, model, graph: new GraphIndex(model.graph!, dir), externalFiles };
}

/** Producers, consumers, initializers and constants of one graph, for pattern matching. */
export class GraphIndex {
  readonly graph: OnnxGraph;
  readonly nodes: OnnxNode[];
  readonly producer = new Map<string, OnnxNode>();
  readonly consumers = new Map<string, OnnxNode[]>();
  readonly order = new Map<OnnxNode, number>();
  readonly initializers = new Map<string, OnnxTensor>();
  readonly inputs: Set<string>;
  readonly outputs: Set<string>;
  private readonly dir: string;

  constructor(graph: OnnxGraph, dir: string) {
    this.graph = graph;
    // Nodes moescope itself appended (instrumentation casts) are not part of the model's routing patterns.
    this.nodes = graph.node.filter((n) => !n.name.startsWith('moescope/'));
    this.dir = dir;
    this.nodes.forEach((n, i) => {
      this.order.set(n, i);
      for (const o of n.output) if (o) this.producer.set(o, n);
      for (const x of n.input) {
        if (!x) continue;
        let list = this.consumers.get(x);
        if (!list) this.consumers.set(x, (list = []));
        list.push(n);
      }
    });
    for (const t of graph.initializer) this.initializers.set(t.name, t);
    this.inputs = new Set(graph.input.map((v) => v.name).filter((n) => !this.initializers.has(n)));
    this.outputs = new Set(graph.output.map((v) => v.name));
  }

  consumersOf(name: string): OnnxNode[] {
    return this.consumers.get(name) ?? [];
  }

  /** The initializer behind `name`, looking through Identity/Cast/Transpose/DequantizeLinear of one. */
  weightBehind(name: string, depth = 3): { tensor: OnnxTensor; transposed: boolean } | null {
    const t = this.initializers.get(name);
    if (t) return { tensor: t, transposed: false };
    const p = this.producer.get(name);
    if (!p || depth === 0) return null;
    if (p.op_type === 'Constant') {
      const v = attr(p, 'value')?.t;
      return v ? { tensor: { ...v, name: v.name || name }, transposed: false } : null;
    }
    if (['Identity', 'Cast', 'DequantizeLinear', 'Transpose'].includes(p.op_type)) {
      const inner = this.weightBehind(p.input[0]!, depth - 1);
      if (inner && p.op_type === 'Transpose') inner.transposed = !inner.transposed;
      return inner;
    }
    return null;
  }

  /** Values of a small constant tensor (initializer or Constant node), or null when not constant. */
  constValues(name: string): number[] | null {
    const init = this.initializers.get(name);
    if (init) return tensorValues(init, this.dir);
    const p = this.producer.get(name);
    if (p?.op_type !== 'Constant') return null;
    const a = p.attribute[0];
    if (!a) return null;
    if (a.name === 'value' && a.t) return tensorValues(a.t, this.dir);
    if (a.name === 'value_float') return [a.f ?? 0];
    if (a.name === 'value_int') return [toNum(a.i)];
    if (a.name === 'value_floats') return a.floats.slice();
    if (a.name === 'value_ints') return a.ints.map(toNum);
    return null;
  }

  /** The first node downstream of tensor `from` (following consumers) that satisfies `target`, within `maxNodes` nodes. */
  reaches(from: string, target: (n: OnnxNode) => boolean, maxNodes = 400): OnnxNode | null {
    const seen = new Set<OnnxNode>();
    const queue: string[] = [from];
    while (queue.length && seen.size < maxNodes) {
      const t = queue.shift()!;
      for (const c of this.consumersOf(t)) {
        if (seen.has(c)) continue;
        seen.add(c);
        if (target(c)) return c;
        queue.push(...c.output);
      }
    }
    return null;
  }
}

export function attr(n: OnnxNode, name: string): OnnxAttribute | undefined {
  return n.attribute.find((a) => a.name === name);
}

export function attrInt(n: OnnxNode, name: string, dflt: number): number {
  const a = attr(n, name);
  return a ? toNum(a.i) : dflt;
}

const MAX_CONST_ELEMENTS = 1 << 16;

/** Numeric values of a tensor (raw_data, typed fields or small external data); null for big or odd tensors. */
function tensorValues(t: OnnxTensor, dir: string): number[] | null {
  const n = t.dims.reduce<number>((a, d) => a * toNum(d), 1);
  if (n > MAX_CONST_ELEMENTS) return null;
  let raw = t.raw_data?.length ? t.raw_data : null;
  const loc = externalLocation(t);
  if (loc) {
    const get = (k: string) => toNum(Number(t.external_data.find((e) => e.key === k)?.value ?? 0));
    const offset = get('offset');
    const length = get('length') || n * (ELEM_BYTES[t.data_type] ?? 4);
    const buf = Buffer.alloc(length);
    const fd = openSync(isAbsolute(loc) ? loc : join(dir, loc), 'r');
    try {
      readSync(fd, buf, 0, length, offset);
    } finally {
      closeSync(fd);
    }
    raw = buf;
  }
  if (raw) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out: number[] = [];
    switch (t.data_type) {
      case DataType.FLOAT:
        for (let i = 0; i + 4 <= raw.length; i += 4) out.push(dv.getFloat32(i, true));
        return out;
      case DataType.DOUBLE:
        for (let i = 0; i + 8 <= raw.length; i += 8) out.push(dv.getFloat64(i, true));
        return out;
      case DataType.INT64:
        for (let i = 0; i + 8 <= raw.length; i += 8) out.push(Number(dv.getBigInt64(i, true)));
        return out;
      case DataType.INT32:
        for (let i = 0; i + 4 <= raw.length; i += 4) out.push(dv.getInt32(i, true));
        return out;
      case DataType.INT8:
        for (let i = 0; i < raw.length; i++) out.push(dv.getInt8(i));
        return out;
      case DataType.UINT8:
      case DataType.BOOL:
        return Array.from(raw);
      case DataType.FLOAT16:
        for (let i = 0; i + 2 <= raw.length; i += 2) out.push(f16ToF32(dv.getUint16(i, true)));
        return out;
      case DataType.BFLOAT16:
        for (let i = 0; i + 2 <= raw.length; i += 2) out.push(bf16ToFloat(dv.getUint16(i, true)));
        return out;
      default:
        return null;
    }
  }
  if (t.float_data.length) return t.float_data.slice();
  if (t.int64_data.length) return t.int64_data.map(toNum);
  if (t.double_data.length) return t.double_data.slice();
  if (t.int32_data.length) {
    if (t.data_type === DataType.FLOAT16) return t.int32_data.map((h: number) => f16ToF32(h));
    if (t.data_type === DataType.BFLOAT16) return t.int32_data.map(bf16ToFloat);
    return t.int32_data.slice();
  }
  return n === 0 ? [] : null;
}

const bfView = new DataView(new ArrayBuffer(4));
function bf16ToFloat(b: number): number {
  bfView.setUint32(0, b << 16);
  return bfView.getFloat32(0);
}

/** A node to add through the byte-append edit. */
export interface AppendNode {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute?: AppendAttribute[];
  domain?: string;
}

/** AttributeProto fields used by appended nodes (type: 1 FLOAT, 2 INT, 4 TENSOR). */
export interface AppendAttribute {
  name: string;
  type: number;
  i?: number;
  f?: number;
  t?: { dims: number[]; data_type: number; int64_data?: number[]; float_data?: number[] };
}

/**
 * The model's bytes with nodes, graph outputs and metadata entries appended (no decode/re-encode of the
 * original: protobuf's merge semantics concatenate repeated fields). Outputs need only a name: onnxruntime infers
 * type and shape.
 */
export function appendToModel(
  bytes: Uint8Array,
  add: { nodes?: AppendNode[]; outputs?: string[]; metadata?: Record<string, string> },
): Buffer {
  const patch: Record<string, unknown> = {
    graph: {
      node: add.nodes ?? [],
      output: (add.outputs ?? []).map((name) => ({ name })),
    },
    metadata_props: Object.entries(add.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  const tail = encodeModel(patch);
  return Buffer.concat([bytes, tail]);
}
