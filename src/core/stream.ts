import type { Scoring } from './batch.js';

/** One MoE layer's router, as recorded with a stream (a subset of what `inspect` reports). */
export interface RouterSummary {
  /** The model's own layer index. */
  layer: number;
  experts: number;
  topK: number;
  /** How the router scores logits; "unknown" when the model's graph does not say (traces from `run`). */
  scoring: Scoring | 'unknown';
  /** Pattern that found it: "softmax-topk", "sigmoid-group-topk", "fused-moe", … ("imported", "synthetic" otherwise). */
  kind: string;
  /** Bytes of one routed expert's weights, when known (for per-device memory of a placement). */
  expertBytes?: number | null;
  /**
   * Whether the recorded weights are what the experts were multiplied by: "followed" (traced to the mixing in the
   * graph), "not-followed" (only the selection is trustworthy: weights are NaN), "derived" (computed from the logits
   * as a fused op does). Absent in traces written before it existed and in imports, which carry their source's weights.
   */
  mixing?: 'followed' | 'not-followed' | 'derived';
  /** Why the weights were not followed to the mixing (or what on the way is unclassified). */
  mixingNote?: string | null;
  /**
   * Which router of the model this is when `layer` alone does not say: the model's own layer (null when the graph
   * names none) and what it routes ("mlp", "attention"). Absent in older traces and imports: then `layer` is the
   * model's layer and the router an MLP router.
   */
  modelLayer?: number | null;
  role?: string;
  /**
   * Zero-computation experts (LongCat-Flash) among the `experts` ids, found in the model's graph: `identity` (the
   * token's hidden state, weighted, is their output), `zero` (nothing), `unknown`. Stats balance over the other
   * experts and report the share of slots routed to these (src/stats/zero-experts.ts). Absent or null: none known.
   */
  zeroExperts?: { ids: number[]; kind: string } | null;
}

/** Describes where a stream of routing batches comes from; the trace stores it as schema metadata. */
export interface StreamMeta {
  /** Model path or name; null when unknown (imported dumps). */
  model: string | null;
  routers: RouterSummary[];
  /** Tokenizer path, when any. */
  tokenizer: string | null;
  /** Compute devices used, e.g. ["cpu"] or ["cuda:0 NVIDIA H200"]. */
  devices: string[];
  /** What produced it: "run", "import:megatron", "import:jsonl", "import:npy", "synth", "listen", "merge", "probe". */
  source: string;
  /** Number of producer processes (ranks) of a multi-process run, when known. */
  world?: number;
}

/** How a role reads in a layer label ("attn", "mlp", or the role as given). */
function roleTag(role: string): string {
  // A role is read from a file: only a short word is shown as it is (views print labels to terminals and HTML).
  return role === 'attention' ? 'attn' : /^[A-Za-z_]{1,16}$/.test(role) ? role : '?';
}

/**
 * A label for each stream layer (without the "L" / "layer" the views put before it). When the routers have more
 * than one role (JetMoE: an attention and an MLP router per layer) the stream's layer index says neither the
 * model's layer nor the router: the label is the model's layer and the role, "1 attn" / "1 mlp" ("?" where the
 * graph names no layer). Otherwise it is the stream's layer id, as before.
 */
export function layerLabels(routers: readonly RouterSummary[], layers: readonly number[]): string[] {
  const roles = new Set(routers.map((r) => r.role ?? 'mlp'));
  if (roles.size < 2 || routers.length !== layers.length) return layers.map(String);
  return routers.map((r) => `${r.modelLayer ?? '?'} ${roleTag(r.role ?? 'mlp')}`);
}
