/**
 * Instrumentation: make the routers' tensors graph outputs by appending bytes to the model (no decode and
 * re-encode of a multi-GB file). The appended nodes gather every router into at most three outputs laid out like
 * RoutingBatch columns — `moescope/ids` int32 [tokens, L·K], `moescope/weights` float32 [tokens, L·K],
 * `moescope/logits` float32 [tokens, L·E] — so one decode step fetches three tensors however many layers the model
 * has: per router Cast (any dtype → int32 / float32; onnxruntime-node rejects bf16 outputs) → Reshape [-1, K]
 * → one Concat per column.
 */
import { closeSync, existsSync, linkSync, openSync, readSync, statSync, symlinkSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { UserError, describeError } from '../core/errors.js';
import { OutputFile } from '../core/output.js';
import type { ModelRouting, RouterInfo } from './discover.js';
import { appendToModel, DataType, type AppendNode, type LoadedModel } from './onnx-model.js';

/** Names moescope adds (a namespace no exporter uses). */
export const OUTPUT_PREFIX = 'moescope/';
export const OUTPUTS = {
  ids: 'moescope/ids',
  weights: 'moescope/weights',
  logits: 'moescope/logits',
  mix: 'moescope/mix_weights',
} as const;
export const INSTRUMENT_METADATA_KEY = 'moescope.instrumented';

/** Where one router's routing sits in the added outputs (column blocks, in router order). */
export interface RouterOutputs {
  layer: number;
  /** Block index in `moescope/ids` and `moescope/weights` (K columns each); null when derived from logits. */
  select: number | null;
  /** Block index in `moescope/logits` (E columns); null when logits are not captured for this router. */
  logits: number | null;
  /** Block in `moescope/mix_weights` (E columns): QMoE's separate mixing weights, when derived. */
  mix: number | null;
  /** Whether the graph has a mixing-weights tensor for this router (else its weights read NaN). */
  hasWeights: boolean;
}

export interface CapturePlan {
  routers: RouterInfo[];
  outputs: RouterOutputs[];
  /** Routers per added output: column width = blocks × (K or E). */
  blocks: { select: number; logits: number; mix: number };
  /** The added output names to fetch. */
  fetch: string[];
}

export interface InstrumentOptions {
  /** Expose router logits as well (needed for entropy, z-loss, margins; derived selections always need them). */
  logits: boolean;
}

/** The instrumented model's bytes and what to fetch from a session built on them. */
export function instrumentModel(
  m: LoadedModel,
  routing: ModelRouting,
  opts: InstrumentOptions,
): { bytes: Buffer; plan: CapturePlan } {
  const nodes: AppendNode[] = [];
  const outputs: RouterOutputs[] = [];
  const cols = { ids: [] as string[], weights: [] as string[], logits: [] as string[], mix: [] as string[] };
  const shapeConsts = new Map<number, string>();
  const shape = (width: number): string => {
    let name = shapeConsts.get(width);
    if (!name) {
      name = `${OUTPUT_PREFIX}shape_${width}`;
      shapeConsts.set(width, name);
      nodes.push({
        name,
        op_type: 'Constant',
        input: [],
        output: [name],
        attribute: [{ name: 'value', type: 4, t: { dims: [2], data_type: DataType.INT64, int64_data: [-1, width] } }],
      });
    }
    return name;
  };
  // Cast to `to`, then Reshape to [-1, width]: one column block.
  const block = (layer: number, what: string, tensor: string, to: number, width: number): string => {
    const cast = `${OUTPUT_PREFIX}L${layer}/${what}`;
    const flat = `${cast}_2d`;
    nodes.push({
      name: cast,
      op_type: 'Cast',
      input: [tensor],
      output: [cast],
      attribute: [{ name: 'to', type: 2, i: to }],
    });
    nodes.push({ name: flat, op_type: 'Reshape', input: [cast, shape(width)], output: [flat] });
    return flat;
  };
  let nanConst: string | null = null;
  for (const r of routing.routers) {
    const derived = r.selection === 'derived';
    const o: RouterOutputs = { layer: r.layer, select: null, logits: null, mix: null, hasWeights: false };
    if (!derived && r.tensors.ids) {
      o.select = cols.ids.length;
      const ids = block(r.layer, 'ids', r.tensors.ids, DataType.INT32, r.topK);
      cols.ids.push(ids);
      if (r.tensors.weights) {
        o.hasWeights = true;
        if (r.mixing.layout === 'dense') {
          // Dense [tokens, E] weights (scattered, e.g. Llama-4's sigmoid of the scattered logits): gather at the ids.
          const dense = block(r.layer, 'weights_dense', r.tensors.weights, DataType.FLOAT, r.experts);
          const ids64 = block(r.layer, 'ids64', r.tensors.ids, DataType.INT64, r.topK);
          const picked = `${OUTPUT_PREFIX}L${r.layer}/weights`;
          nodes.push({
            name: picked,
            op_type: 'GatherElements',
            input: [dense, ids64],
            output: [picked],
            attribute: [{ name: 'axis', type: 2, i: 1 }],
          });
          cols.weights.push(picked);
        } else cols.weights.push(block(r.layer, 'weights', r.tensors.weights, DataType.FLOAT, r.topK));
      } else {
        // No mixing-weights tensor in the graph: a NaN block of the same shape keeps the columns aligned.
        if (!nanConst) {
          nanConst = `${OUTPUT_PREFIX}nan`;
          nodes.push({
            name: nanConst,
            op_type: 'Constant',
            input: [],
            output: [nanConst],
            attribute: [{ name: 'value_float', type: 1, f: NaN }],
          });
        }
        const asFloat = `${OUTPUT_PREFIX}L${r.layer}/ids_float`;
        const nan = `${OUTPUT_PREFIX}L${r.layer}/weights_nan`;
        nodes.push({
          name: asFloat,
          op_type: 'Cast',
          input: [ids],
          output: [asFloat],
          attribute: [{ name: 'to', type: 2, i: DataType.FLOAT }],
        });
        nodes.push({ name: nan, op_type: 'Mul', input: [asFloat, nanConst], output: [nan] });
        cols.weights.push(nan);
      }
    }
    if (derived || opts.logits) {
      o.logits = cols.logits.length;
      cols.logits.push(block(r.layer, 'logits', r.tensors.logits, DataType.FLOAT, r.experts));
    }
    if (derived && r.derived?.weightsTensor) {
      o.mix = cols.mix.length;
      cols.mix.push(block(r.layer, 'mix_weights', r.derived.weightsTensor, DataType.FLOAT, r.experts));
    }
    outputs.push(o);
  }
  const fetch: string[] = [];
  const concat = (name: string, inputs: string[]) => {
    if (!inputs.length) return;
    nodes.push({
      name,
      op_type: 'Concat',
      input: inputs,
      output: [name],
      attribute: [{ name: 'axis', type: 2, i: 1 }],
    });
    fetch.push(name);
  };
  concat(OUTPUTS.ids, cols.ids);
  concat(OUTPUTS.weights, cols.weights);
  concat(OUTPUTS.logits, cols.logits);
  concat(OUTPUTS.mix, cols.mix);
  const plan: CapturePlan = {
    routers: routing.routers,
    outputs,
    blocks: { select: cols.ids.length, logits: cols.logits.length, mix: cols.mix.length },
    fetch,
  };
  // A model instrumented before (by `moescope instrument`) already has these outputs: add nothing twice.
  if (m.graph.outputs.has(OUTPUTS.ids) || m.graph.outputs.has(OUTPUTS.logits)) return reuse(m, routing, opts, plan);
  const metadata = {
    [INSTRUMENT_METADATA_KEY]: JSON.stringify({ outputs: fetch, routers: outputs, logits: opts.logits }),
  };
  return { bytes: appendToModel(m.bytes, { nodes, outputs: fetch, metadata }), plan };
}

/** The plan for a model that already carries moescope's outputs, laid out as when it was instrumented. */
function reuse(
  m: LoadedModel,
  routing: ModelRouting,
  opts: InstrumentOptions,
  plan: CapturePlan,
): { bytes: Buffer; plan: CapturePlan } {
  const entry = m.model.metadata_props.find((p) => p.key === INSTRUMENT_METADATA_KEY);
  let storedLogits = false;
  try {
    storedLogits = entry ? Boolean((JSON.parse(entry.value) as { logits?: boolean }).logits) : false;
  } catch {
    storedLogits = false;
  }
  if (opts.logits && !storedLogits)
    throw new UserError(
      `${m.path} was instrumented without router logits; instrument the original model with --logits.`,
    );
  if (storedLogits && !opts.logits) {
    // Same layout as stored (every router has a logits block); fetch the logits only if a derived router needs them.
    const full = instrumentModel(
      { ...m, graph: { ...m.graph, outputs: new Set<string>() } as LoadedModel['graph'] },
      routing,
      { logits: true },
    ).plan;
    const needed = full.routers.some((r) => r.selection === 'derived');
    for (const [i, o] of full.outputs.entries()) if (full.routers[i]!.selection === 'graph') o.logits = null;
    if (!needed) full.fetch = full.fetch.filter((f) => f !== OUTPUTS.logits);
    plan = full;
  }
  const missing = plan.fetch.filter((f) => !m.graph.outputs.has(f));
  if (missing.length)
    throw new UserError(
      `${m.path} was instrumented by another moescope version (missing ${missing.join(', ')}); instrument the original model.`,
    );
  return { bytes: m.bytes, plan };
}

/**
 * Write an instrumented copy to `out`. External data stays where it is: when `out` is in another directory the
 * data files are hard-linked (or, across file systems, symlinked) beside it, because onnxruntime resolves them
 * relative to the model file and refuses paths that escape its directory.
 */
export function writeInstrumented(m: LoadedModel, bytes: Uint8Array, out: string): { path: string; linked: string[] } {
  const target = resolve(out);
  const dataFiles = m.externalFiles.map((loc) => (isAbsolute(loc) ? loc : join(m.dir, loc)));
  // Checked first: never the input model or its data (same inode through any path), never a folder.
  const file = OutputFile.create(out, { inputs: [m.path, ...dataFiles], what: 'instrumented model' });
  const linked: string[] = [];
  try {
    const outDir = dirname(target);
    if (outDir !== m.dir) {
      for (const loc of m.externalFiles) {
        if (isAbsolute(loc)) continue;
        const src = join(m.dir, loc);
        const dst = join(outDir, loc);
        if (existsSync(dst)) {
          // The model would read this file as its weights: it must be the same data, or the copy is broken.
          if (!sameContents(src, dst))
            throw new UserError(
              `${dst} already exists and differs from the model's external data ${src}; ` +
                'instrument into an empty folder (or remove it)',
            );
          continue;
        }
        try {
          linkSync(src, dst);
        } catch {
          try {
            symlinkSync(relative(dirname(dst), src), dst);
          } catch (e) {
            throw new UserError(`cannot place external data "${loc}" beside ${out}: ${describeError(e)}`);
          }
        }
        linked.push(dst);
      }
    }
    file.write(bytes);
    file.commit();
  } catch (e) {
    file.abort();
    throw e;
  }
  return { path: target, linked };
}

/** Whether two files hold the same bytes (same inode at once; else size, then 1 MiB chunks). */
function sameContents(a: string, b: string): boolean {
  const sa = statSync(a);
  const sb = statSync(b);
  if (sa.dev === sb.dev && sa.ino === sb.ino) return true;
  if (sa.size !== sb.size) return false;
  const fa = openSync(a, 'r');
  try {
    const fb = openSync(b, 'r');
    try {
      const ba = Buffer.allocUnsafe(1 << 20);
      const bb = Buffer.allocUnsafe(1 << 20);
      for (let at = 0; at < sa.size; ) {
        const n = readSync(fa, ba, 0, ba.length, at);
        const k = readSync(fb, bb, 0, n, at);
        if (n === 0 || k !== n || ba.compare(bb, 0, n, 0, n) !== 0) return false;
        at += n;
      }
      return true;
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}
