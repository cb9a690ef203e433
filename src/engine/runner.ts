/**
 * One model, ready to run: routers found, router tensors exposed, a session on the chosen provider, and the
 * forward pass in both modes — KV-cache decode when the model takes `past_key_values.*` (Optimum /
 * transformers.js contract: present.* of one step becomes past_key_values.* of the next), full recompute of the
 * whole sequence otherwise.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { RoutingSchema } from '../core/batch.js';
import { F16_TO_F32 } from '../core/f16.js';
import { UserError, describeError } from '../core/errors.js';
import type { RouterSummary, StreamMeta } from '../core/stream.js';
import { RoutingReader, schemaFor, type RoutingRows } from './capture.js';
import { requireRouters, type ModelRouting } from './discover.js';
import { instrumentModel, type CapturePlan } from './instrument.js';
import { loadModel } from './onnx-model.js';
import { createSession, loadOrt, type ExecutionProvider } from './session.js';
import { findTokenizer, loadTextCodec, type TextCodec } from './tokenizer.js';

export interface RunnerOptions {
  /** Path to model.onnx (or its directory). */
  model: string;
  ep?: ExecutionProvider;
  deviceId?: number;
  /** Capture router logits too. */
  logits?: boolean;
  /** false: run without exposing router tensors (the baseline of the overhead benchmark; no routing comes back). */
  instrument?: boolean;
  /** tokenizer.json; default: the one beside the model. */
  tokenizer?: string | null;
  /** Intra-op threads (default: onnxruntime's choice). */
  threads?: number;
}

/**
 * Several sequences decoded together, one forward pass for all (as servers batch requests). Sequences are
 * left-padded to a common length: pads are masked out of attention (attention_mask 0) and real tokens keep
 * positions 0, 1, … of their own sequence, so each sequence's routing is what it would be alone.
 */
export interface BatchState {
  /** Real token ids of each sequence fed so far. */
  ids: number[][];
  /** Left pads of each sequence (fixed by the first pass: every later pass feeds one token per sequence). */
  pads: number[];
  /** KV cache of the last pass (KV models only), batch dimension = number of sequences. */
  past: Record<string, Tensor> | null;
}

/** A sequence being decoded. */
export interface SequenceState {
  /** Every token id fed so far. */
  ids: number[];
  /** KV cache from the last step (KV models only). */
  past: Record<string, Tensor> | null;
}

export interface ForwardResult {
  /** Next-token logits after the last fed token. */
  logits: Float32Array;
  /** Routing of the fed tokens; null when the runner is not instrumented. */
  rows: RoutingRows | null;
}

interface KvInput {
  input: string;
  output: string;
  type: Tensor.Type;
  shape: (number | string)[];
}

export class ModelRunner {
  readonly modelPath: string;
  readonly routing: ModelRouting;
  readonly schema: RoutingSchema;
  readonly plan: CapturePlan | null;
  readonly codec: TextCodec;
  readonly session: InferenceSession;
  readonly ep: ExecutionProvider;
  readonly deviceId: number;
  /** KV-cache inputs, or null for full recompute. */
  readonly kv: KvInput[] | null;
  private readonly reader: RoutingReader | null;
  private readonly fetches: string[];
  private readonly logitsName: string;
  private readonly inputNames: Set<string>;
  private readonly ort: typeof import('onnxruntime-node');

  private constructor(init: {
    modelPath: string;
    routing: ModelRouting;
    schema: RoutingSchema;
    plan: CapturePlan | null;
    codec: TextCodec;
    session: InferenceSession;
    ep: ExecutionProvider;
    deviceId: number;
    ort: typeof import('onnxruntime-node');
  }) {
    this.ort = init.ort;
    this.modelPath = init.modelPath;
    this.routing = init.routing;
    this.schema = init.schema;
    this.plan = init.plan;
    this.codec = init.codec;
    this.session = init.session;
    this.ep = init.ep;
    this.deviceId = init.deviceId;
    this.reader = init.plan ? new RoutingReader(init.plan, init.schema) : null;
    const s = init.session;
    this.inputNames = new Set(s.inputNames);
    this.logitsName = s.outputNames.includes('logits')
      ? 'logits'
      : s.outputNames.find((o) => !o.startsWith('moescope/') && !o.startsWith('present'))!;
    if (!this.inputNames.has('input_ids'))
      throw new UserError(`${init.modelPath} has no input_ids input; moescope runs causal language models.`);
    const meta = new Map(s.inputMetadata.map((m) => [m.name, m]));
    const pastInputs = s.inputNames.filter((n) => n.startsWith('past_key_values.') || n.startsWith('past.'));
    if (pastInputs.length) {
      this.kv = pastInputs.map((input) => {
        const suffix = input.replace(/^past_key_values\.|^past\./, '');
        const output = ['present.', 'present_key_values.']
          .map((p) => p + suffix)
          .find((o) => s.outputNames.includes(o));
        if (!output) throw new UserError(`${init.modelPath} takes ${input} but has no matching present output.`);
        const md = meta.get(input);
        if (!md?.isTensor) throw new UserError(`${init.modelPath}: input ${input} is not a tensor.`);
        return { input, output, type: md.type, shape: [...md.shape] };
      });
    } else this.kv = null;
    for (const name of s.inputNames) {
      if (
        !['input_ids', 'attention_mask', 'position_ids', 'token_type_ids', 'use_cache_branch'].includes(name) &&
        !pastInputs.includes(name)
      )
        throw new UserError(`${init.modelPath} has an input moescope does not know how to feed: ${name}.`);
    }
    this.fetches = [this.logitsName, ...(this.kv?.map((k) => k.output) ?? []), ...(init.plan?.fetch ?? [])];
  }

  static async open(o: RunnerOptions): Promise<ModelRunner> {
    const m = loadModel(o.model);
    const routing = requireRouters(m, o.model);
    const logits = o.logits ?? false;
    const schema = schemaFor(routing.routers, logits);
    const instrumented = o.instrument !== false ? instrumentModel(m, routing, { logits }) : null;
    const ep = o.ep ?? 'cpu';
    const deviceId = o.deviceId ?? 0;
    const codec = await loadTextCodec(findTokenizer(m.path, o.tokenizer));
    const session = await createSession({
      bytes: instrumented ? instrumented.bytes : m.bytes,
      dir: m.dir,
      externalData: m.externalFiles.length > 0,
      ep,
      deviceId,
      label: o.model,
      threads: o.threads,
    });
    return new ModelRunner({
      modelPath: m.path,
      routing,
      schema,
      plan: instrumented?.plan ?? null,
      codec,
      session,
      ep,
      deviceId,
      ort: await loadOrt(),
    });
  }

  /** Router summaries as streams record them. */
  routerSummaries(): RouterSummary[] {
    return this.routing.routers.map((r) => ({
      layer: r.layer,
      experts: r.experts,
      topK: r.topK,
      scoring: r.scoring,
      kind: r.kind,
      expertBytes: r.expertBytes,
      mixing: r.mixing.status,
      mixingNote: r.mixing.note,
      modelLayer: r.identity.layer,
      role: r.identity.role,
      zeroExperts: r.zeroExperts,
    }));
  }

  streamMeta(devices: string[]): StreamMeta {
    return {
      model: this.modelPath,
      routers: this.routerSummaries(),
      tokenizer: this.codec.path,
      devices,
      source: 'run',
    };
  }

  newSequence(): SequenceState {
    return { ids: [], past: null };
  }

  /** Feed `ids` after what the sequence holds; returns next-token logits and the fed tokens' routing. */
  async forward(st: SequenceState, ids: number[]): Promise<ForwardResult> {
    if (ids.length === 0) throw new Error('forward() needs at least one token');
    const ort = this.ort;
    const pastLen = this.kv ? st.ids.length : 0;
    const fed = this.kv ? ids : st.ids.concat(ids);
    const S = fed.length;
    const total = pastLen + S;
    const feeds: Record<string, Tensor> = {};
    const i64 = (vals: (i: number) => number, n: number) => {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(vals(i));
      return a;
    };
    feeds.input_ids = new ort.Tensor(
      'int64',
      i64((i) => fed[i]!, S),
      [1, S],
    );
    if (this.inputNames.has('attention_mask'))
      feeds.attention_mask = new ort.Tensor(
        'int64',
        i64(() => 1, total),
        [1, total],
      );
    if (this.inputNames.has('position_ids'))
      feeds.position_ids = new ort.Tensor(
        'int64',
        i64((i) => pastLen + i, S),
        [1, S],
      );
    if (this.inputNames.has('token_type_ids'))
      feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(S), [1, S]);
    if (this.inputNames.has('use_cache_branch'))
      feeds.use_cache_branch = new ort.Tensor('bool', new Uint8Array([pastLen > 0 ? 1 : 0]), [1]);
    if (this.kv) {
      for (const k of this.kv) feeds[k.input] = st.past?.[k.input] ?? this.emptyPast(k);
    }
    let out: InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds, this.fetches);
    } catch (e) {
      // Bad token ids, shapes the export cannot take, provider failures: name the model and the cause.
      throw new UserError(
        `onnxruntime failed running ${this.modelPath} on ${S} tokens: ${describeError(e).replace(/\s+/g, ' ').slice(0, 300)}`,
      );
    }
    const lg = out[this.logitsName]!;
    const V = lg.dims[lg.dims.length - 1]!;
    const logits = lastRow(lg, V);
    let rows: RoutingRows | null = null;
    if (this.reader) rows = this.reader.read(out, S, S - ids.length, S);
    if (this.kv) {
      const past: Record<string, Tensor> = {};
      for (const k of this.kv) past[k.input] = out[k.output]!;
      st.past = past;
    }
    st.ids.push(...ids);
    return { logits, rows };
  }

  newBatch(n: number): BatchState {
    return { ids: Array.from({ length: n }, () => []), pads: [], past: null };
  }

  /**
   * Feed each sequence its `ids` (the prompts on the first pass, one token each afterwards) in one forward pass;
   * returns, per sequence, its next-token logits and the routing of the tokens it was fed (pads dropped).
   */
  async forwardBatch(st: BatchState, ids: number[][]): Promise<ForwardResult[]> {
    const N = st.ids.length;
    if (ids.length !== N || ids.some((x) => x.length === 0))
      throw new Error('forwardBatch() needs tokens for every sequence');
    const first = st.pads.length === 0;
    if (!first && ids.some((x) => x.length !== 1))
      throw new Error('after the first pass, forwardBatch() feeds one token per sequence');
    if (first) {
      const longest = Math.max(...ids.map((x) => x.length));
      st.pads = ids.map((x) => longest - x.length);
    }
    const ort = this.ort;
    const width = st.pads[0]! + st.ids[0]!.length + ids[0]!.length; // padded length after this pass (same for all)
    const pastLen = this.kv ? (first ? 0 : width - 1) : 0;
    const S = this.kv ? width - pastLen : width;
    const total = pastLen + S;
    const rowTokens = (b: number): number[] => {
      const all = [...new Array<number>(st.pads[b]!).fill(0), ...st.ids[b]!, ...ids[b]!];
      return all.slice(all.length - S);
    };
    const input = new BigInt64Array(N * S);
    const mask = new BigInt64Array(N * total);
    const pos = new BigInt64Array(N * S);
    for (let b = 0; b < N; b++) {
      const row = rowTokens(b);
      const pad = st.pads[b]!;
      for (let i = 0; i < S; i++) {
        input[b * S + i] = BigInt(row[i]!);
        const at = total - S + i; // position of this slot in the padded timeline
        pos[b * S + i] = BigInt(Math.max(0, at - pad));
      }
      for (let i = 0; i < total; i++) mask[b * total + i] = i < pad ? 0n : 1n;
    }
    const feeds: Record<string, Tensor> = { input_ids: new ort.Tensor('int64', input, [N, S]) };
    if (this.inputNames.has('attention_mask')) feeds.attention_mask = new ort.Tensor('int64', mask, [N, total]);
    if (this.inputNames.has('position_ids')) feeds.position_ids = new ort.Tensor('int64', pos, [N, S]);
    if (this.inputNames.has('token_type_ids'))
      feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(N * S), [N, S]);
    if (this.inputNames.has('use_cache_branch'))
      feeds.use_cache_branch = new ort.Tensor('bool', new Uint8Array([pastLen > 0 ? 1 : 0]), [1]);
    if (this.kv) for (const k of this.kv) feeds[k.input] = st.past?.[k.input] ?? this.emptyPast(k, N);
    let out: InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds, this.fetches);
    } catch (e) {
      throw new UserError(
        `onnxruntime failed running ${this.modelPath} on ${N} sequences × ${S} tokens: ${describeError(e).replace(/\s+/g, ' ').slice(0, 300)}`,
      );
    }
    const lg = out[this.logitsName]!;
    const V = lg.dims[lg.dims.length - 1]!;
    const results: ForwardResult[] = [];
    for (let b = 0; b < N; b++) {
      // Routing rows are token-major over the flattened [N, S] batch: sequence b's fed tokens end at (b + 1)·S.
      const rows = this.reader ? this.reader.read(out, N * S, (b + 1) * S - ids[b]!.length, (b + 1) * S) : null;
      results.push({ logits: lastRow(lg, V, (b + 1) * S * V), rows });
      st.ids[b]!.push(...ids[b]!);
    }
    if (this.kv) {
      const past: Record<string, Tensor> = {};
      for (const k of this.kv) past[k.input] = out[k.output]!;
      st.past = past;
    }
    return results;
  }

  /** Zero-length past tensor shaped from the input's metadata: batch `n` (default 1), past length 0, fixed dims kept. */
  private emptyPast(k: KvInput, n = 1): Tensor {
    const dims = k.shape.map((d, i) => (typeof d === 'number' && d >= 0 ? d : i === 0 ? n : 0));
    if (dims[0] === 0) dims[0] = n;
    const make = k.type === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    return new this.ort.Tensor(k.type === 'float16' ? 'float16' : 'float32', make, dims);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** The V logits ending at `end` (default: the last position's row of [1, S, V]) as float32. */
function lastRow(t: Tensor, V: number, end?: number): Float32Array {
  const n = end ?? (t.data as ArrayLike<number>).length;
  if (t.type === 'float32') return (t.data as Float32Array).slice(n - V, n);
  if (t.type === 'float16') {
    const raw = t.data as unknown as Uint16Array | Float32Array;
    const out = new Float32Array(V);
    if (raw instanceof Uint16Array) for (let i = 0; i < V; i++) out[i] = F16_TO_F32[raw[n - V + i]!]!;
    else for (let i = 0; i < V; i++) out[i] = Number(raw[n - V + i]);
    return out;
  }
  throw new UserError(`model logits are ${t.type}; moescope reads float32 or float16 logits.`);
}
