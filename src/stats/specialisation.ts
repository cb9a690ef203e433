/**
 * Expert specialisation (OLMoE, arXiv 2409.02060 §5).
 *  - Domain: for each tag (the prompt's domain), the share of that tag's tokens routed to each expert:
 *    N(tag tokens with e in their top-K) / N(tag tokens). Uniform routing gives K/E.
 *  - Vocabulary: for each token id x, the share of x's occurrences routed to each expert, N(x → e) / N(x);
 *    per expert we list the token ids it takes most consistently.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';

export interface ExpertShare {
  expert: number;
  share: number;
}

export interface DomainLayer {
  layer: number;
  /** Share of the tag's tokens routed to each expert. */
  share: number[];
  /** Experts with the largest share, largest first. */
  top: ExpertShare[];
  /** Largest share / (K/E): how many times its uniform share the most specialised expert takes. */
  specialisation: number;
}

export interface DomainResult {
  tag: string;
  tokens: number;
  layers: DomainLayer[];
}

export class DomainSpecialisation {
  readonly schema: RoutingSchema;
  private readonly byTag = new Map<string, { tokens: number; counts: Float64Array }>();

  constructor(schema: RoutingSchema) {
    this.schema = schema;
  }

  /** Tokens without a tag are not counted. */
  add(b: RoutingBatch): void {
    if (!b.tag) return;
    const L = this.schema.layers.length;
    const E = this.schema.experts;
    const K = this.schema.topK;
    for (let t = 0; t < b.length; t++) {
      const tag = b.tag[t];
      if (tag == null) continue;
      let acc = this.byTag.get(tag);
      if (!acc) this.byTag.set(tag, (acc = { tokens: 0, counts: new Float64Array(L * E) }));
      acc.tokens++;
      for (let l = 0; l < L; l++) {
        const o = (t * L + l) * K;
        for (let j = 0; j < K; j++) acc.counts[l * E + b.experts[o + j]!]!++;
      }
    }
  }

  get tags(): string[] {
    return [...this.byTag.keys()].sort();
  }

  result(top = 3): DomainResult[] {
    const E = this.schema.experts;
    const uniform = this.schema.topK / E;
    return this.tags.map((tag) => {
      const { tokens, counts } = this.byTag.get(tag)!;
      return {
        tag,
        tokens,
        layers: this.schema.layers.map((layer, l) => {
          const share = Array.from(counts.subarray(l * E, (l + 1) * E), (c) => c / tokens);
          const ranked = share
            .map((s, expert) => ({ expert, share: s }))
            .sort((a, b) => b.share - a.share || a.expert - b.expert);
          return { layer, share, top: ranked.slice(0, top), specialisation: ranked[0]!.share / uniform };
        }),
      };
    });
  }
}

export interface VocabToken {
  tokenId: number;
  token: string;
  /** Occurrences of this token id. */
  count: number;
  /** Share of its occurrences routed to the expert. */
  share: number;
}

export interface VocabResult {
  layer: number;
  /** Distinct token ids seen. */
  distinctTokens: number;
  /**
   * Occurrence-weighted mean over token ids (seen ≥ minCount times) of max_e N(x → e)/N(x): 1 when every token id
   * always goes to the same expert(s); K/E under uniform routing.
   */
  meanMaxShare: number | null;
  /** Per expert, the token ids it takes most consistently (share desc, then count desc). */
  experts: { expert: number; tokens: VocabToken[] }[];
}

export class VocabSpecialisation {
  readonly schema: RoutingSchema;
  /** Index of the MoE layer (0 … L−1) analysed. */
  readonly layerIndex: number;
  private readonly byToken = new Map<number, { text: string; count: number; experts: Uint32Array }>();

  constructor(schema: RoutingSchema, layerIndex: number) {
    if (!Number.isInteger(layerIndex) || layerIndex < 0 || layerIndex >= schema.layers.length)
      throw new UserError(
        `vocabulary layer must be an MoE layer index 0…${schema.layers.length - 1}, got ${layerIndex}`,
      );
    this.schema = schema;
    this.layerIndex = layerIndex;
  }

  add(b: RoutingBatch): void {
    const L = this.schema.layers.length;
    const E = this.schema.experts;
    const K = this.schema.topK;
    const l = this.layerIndex;
    for (let t = 0; t < b.length; t++) {
      const id = b.tokenId[t]!;
      let acc = this.byToken.get(id);
      if (!acc) this.byToken.set(id, (acc = { text: b.token[t] ?? '', count: 0, experts: new Uint32Array(E) }));
      acc.count++;
      const o = (t * L + l) * K;
      for (let j = 0; j < K; j++) acc.experts[b.experts[o + j]!]!++;
    }
  }

  result(perExpert = 5, minCount = 2): VocabResult {
    const E = this.schema.experts;
    // Per expert its best `perExpert` so far, in order: a token id is in an expert's list once, so the order is
    // total and this keeps what sorting every (token, expert) pair and cutting would, without the sort.
    const lists: VocabToken[][] = Array.from({ length: E }, () => []);
    const before = (a: VocabToken, b: VocabToken) =>
      b.share - a.share || b.count - a.count || a.tokenId - b.tokenId;
    let wsum = 0;
    let wmax = 0;
    for (const [tokenId, acc] of this.byToken) {
      if (acc.count < minCount) continue;
      let m = 0;
      for (let e = 0; e < E; e++) {
        const c = acc.experts[e]!;
        if (c > m) m = c;
        if (c === 0 || perExpert <= 0) continue;
        const list = lists[e]!;
        const share = c / acc.count;
        const last = list[list.length - 1];
        if (list.length === perExpert && last) {
          // Cheap rejection first: most pairs rank below the list's last.
          if (share < last.share || (share === last.share && acc.count < last.count)) continue;
        }
        const x: VocabToken = { tokenId, token: acc.text, count: acc.count, share };
        let k = list.length;
        while (k > 0 && before(x, list[k - 1]!) < 0) k--;
        if (k >= perExpert) continue;
        list.splice(k, 0, x);
        if (list.length > perExpert) list.pop();
      }
      wsum += acc.count;
      wmax += m;
    }
    return {
      layer: this.schema.layers[this.layerIndex]!,
      distinctTokens: this.byToken.size,
      meanMaxShare: wsum > 0 ? wmax / wsum : null,
      experts: lists.map((tokens, expert) => ({ expert, tokens })),
    };
  }
}
