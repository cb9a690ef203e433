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

/** Token ids per slab of VocabSpecialisation's counters: 2^10. */
const SLAB_BITS = 10;
const SLAB_MASK = (1 << SLAB_BITS) - 1;

export class VocabSpecialisation {
  readonly schema: RoutingSchema;
  /** Index of the MoE layer (0 … L−1) analysed. */
  readonly layerIndex: number;
  /**
   * Where each token id's row is: its text, its count, and E counters in slabs of 2^SLAB_BITS rows (an allocation
   * per 1,024 token ids, not one each, and nothing copied as the vocabulary grows).
   */
  private readonly rowOf = new Map<number, number>();
  private readonly texts: string[] = [];
  private readonly tokenIds: number[] = [];
  private readonly counts: number[] = [];
  private readonly slabs: Uint32Array[] = [];

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
      let row = this.rowOf.get(id);
      if (row === undefined) row = this.newRow(id, b.token[t] ?? '');
      this.counts[row]!++;
      const o = (t * L + l) * K;
      const slab = this.slabs[row >>> SLAB_BITS]!;
      const at = (row & SLAB_MASK) * E;
      for (let j = 0; j < K; j++) slab[at + b.experts[o + j]!]!++;
    }
  }

  private newRow(id: number, text: string): number {
    const row = this.texts.length;
    if ((row & SLAB_MASK) === 0) this.slabs.push(new Uint32Array((SLAB_MASK + 1) * this.schema.experts));
    this.counts.push(0);
    this.rowOf.set(id, row);
    this.texts.push(text);
    this.tokenIds.push(id);
    return row;
  }

  result(perExpert = 5, minCount = 2): VocabResult {
    const E = this.schema.experts;
    // Per expert its best `perExpert` so far, in order: a token id is in an expert's list once, so the order is
    // total and this keeps what sorting every (token, expert) pair and cutting would, without the sort.
    const lists: VocabToken[][] = Array.from({ length: E }, () => []);
    const before = (a: VocabToken, b: VocabToken) => b.share - a.share || b.count - a.count || a.tokenId - b.tokenId;
    let wsum = 0;
    let wmax = 0;
    for (let row = 0; row < this.texts.length; row++) {
      const count = this.counts[row]!;
      if (count < minCount) continue;
      const tokenId = this.tokenIds[row]!;
      const slab = this.slabs[row >>> SLAB_BITS]!;
      const at = (row & SLAB_MASK) * E;
      let m = 0;
      for (let e = 0; e < E; e++) {
        const c = slab[at + e]!;
        if (c > m) m = c;
        if (c === 0 || perExpert <= 0) continue;
        const list = lists[e]!;
        const share = c / count;
        const last = list[list.length - 1];
        if (list.length === perExpert && last) {
          // Cheap rejection first: most pairs rank below the list's last.
          if (share < last.share || (share === last.share && count < last.count)) continue;
        }
        const x: VocabToken = { tokenId, token: this.texts[row]!, count, share };
        let k = list.length;
        while (k > 0 && before(x, list[k - 1]!) < 0) k--;
        if (k >= perExpert) continue;
        list.splice(k, 0, x);
        if (list.length > perExpert) list.pop();
      }
      wsum += count;
      wmax += m;
    }
    return {
      layer: this.schema.layers[this.layerIndex]!,
      distinctTokens: this.texts.length,
      meanMaxShare: wsum > 0 ? wmax / wsum : null,
      experts: lists.map((tokens, expert) => ({ expert, tokens })),
    };
  }
}
