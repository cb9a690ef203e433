/**
 * Served requests → routing tokens of one schema. Servers return expert ids only, so every weight is 1/K (as for
 * Megatron traces); layers the server never routed (dense layers) are left out of the schema.
 */
import type { RoutingSchema, Scoring, TokenRouting } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import type { StreamMeta } from '../core/stream.js';
import { routedLayers, type ServedRequest } from './responses.js';

export interface ServedSchema {
  schema: RoutingSchema;
  /** Payload layer index of each schema layer. */
  keep: number[];
  /** Layers and k of the payloads this schema reads. */
  payloadLayers: number;
  notes: string[];
}

export interface SchemaOptions {
  /** Experts per layer (--experts); default: largest id seen + 1. */
  experts?: number;
  scoring: Scoring;
}

/** The schema that holds these requests: their layers × k, the layers any of them routed, E. */
export function servedSchema(reqs: ServedRequest[], o: SchemaOptions): ServedSchema {
  const first = reqs.find((r) => r.routing.rows > 0);
  if (!first) throw new UserError('no routed tokens in the responses');
  const { layers: L, topK: K } = first.routing;
  const routed = new Array<boolean>(L).fill(false);
  let maxId = -1;
  for (const r of reqs) {
    if (r.routing.rows === 0) continue;
    if (r.routing.layers !== L || r.routing.topK !== K)
      throw new UserError(
        `responses differ in shape: ${L} layers × top-${K} and ${r.routing.layers} × top-${r.routing.topK}`,
      );
    routedLayers(r.routing).forEach((x, l) => (routed[l] ||= x));
    for (const id of r.routing.ids) if (id > maxId) maxId = id;
  }
  const keep = routed.flatMap((x, l) => (x ? [l] : []));
  if (keep.length === 0) throw new UserError('the responses hold no routed layer (every selection is empty)');
  const notes: string[] = [];
  if (keep.length < L)
    notes.push(
      `${L - keep.length} of ${L} layers hold no routing (dense layers) and are left out: ${routed.flatMap((x, l) => (x ? [] : [l])).join(',')}`,
    );
  let E = o.experts;
  if (E === undefined) {
    E = maxId + 1;
    notes.push(`experts per layer inferred as ${E} (largest id seen + 1); give --experts to set it`);
  } else if (maxId >= E) throw new UserError(`expert id ${maxId} ≥ --experts ${E}`);
  if (E > 65536) throw new UserError(`expert id ${maxId} is beyond the 65,536 experts a trace holds`);
  if (K > E) throw new UserError(`top-${K} exceeds the ${E} experts`);
  notes.push('servers return expert ids only: every weight is 1/K');
  return {
    schema: { layers: keep, experts: E, topK: K, scoring: o.scoring, hasLogits: false },
    keep,
    payloadLayers: L,
    notes,
  };
}

/** Each routed row of a request as a token of `s`'s schema. */
export function* requestTokens(req: ServedRequest, seq: number, s: ServedSchema, tNs: bigint): Generator<TokenRouting> {
  const { rows, layers: L, topK: K, ids } = req.routing;
  if (rows === 0) return;
  if (L !== s.payloadLayers || K !== s.schema.topK)
    throw new UserError(
      `request ${seq}: ${L} layers × top-${K}, the earlier responses had ${s.payloadLayers} × top-${s.schema.topK}`,
    );
  const E = s.schema.experts;
  const w = new Array<number>(s.keep.length * K).fill(1 / K);
  for (let i = 0; i < rows; i++) {
    const pos = req.start + i;
    const experts = new Array<number>(s.keep.length * K);
    s.keep.forEach((l, j) => {
      for (let k = 0; k < K; k++) {
        const id = ids[(i * L + l) * K + k]!;
        if (id < 0 || id >= E)
          throw new UserError(
            `request ${seq} token ${pos} layer ${l}: expert id ${id} is outside 0…${E - 1}${id >= E ? ' (give --experts)' : ''}`,
          );
        experts[j * K + k] = id;
      }
    });
    yield {
      seq,
      pos,
      tokenId: req.ids?.[pos] ?? -1,
      token: req.texts?.[pos] ?? '',
      isPrompt: req.promptLen !== null && pos < req.promptLen,
      tNs,
      experts,
      weights: w,
    };
  }
}

/** Stream metadata of served routing; source "import:routed-experts:sglang", "server:vllm" … */
export function servedMeta(api: string, model: string | null, source: string): StreamMeta {
  return { model, routers: [], tokenizer: null, devices: [], source: `${source}:${api}` };
}
