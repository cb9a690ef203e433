/**
 * Router agreement between two traces of the same tokens (two checkpoints, two precisions, two engines):
 * per layer, the mean |TopK_a ∩ TopK_b| / K (each layer's own K when layers differ in shape) (OLMoE's "router saturation", arXiv 2409.02060 §5, when b is the
 * final checkpoint) and the share of tokens whose first choice (highest weight) agrees.
 * Feed the two streams with addA / addB in any batch sizes; tokens are matched in order and must carry the
 * same token ids.
 */
import { expertsAt, type RoutingBatch, type RoutingSchema, topKAt } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { firstChoice } from './choice.js';

export interface LayerAgreement {
  layer: number;
  /** Mean |A ∩ B| / min(K_a, K_b). */
  overlap: number | null;
  /** Share of tokens with the same first choice. */
  firstChoice: number | null;
}

export interface AgreementResult {
  tokens: number;
  layers: LayerAgreement[];
  /** Mean over layers. */
  overlap: number | null;
  firstChoice: number | null;
}

interface Pending {
  batch: RoutingBatch;
  offset: number;
}

export class RouterAgreement {
  private readonly a: RoutingSchema;
  private readonly b: RoutingSchema;
  private readonly L: number;
  private readonly qa: Pending[] = [];
  private readonly qb: Pending[] = [];
  private tokens = 0;
  private readonly overlapSum: Float64Array;
  private readonly firstSame: Float64Array;
  private readonly mark: Int32Array;
  private stamp = 0;

  constructor(a: RoutingSchema, b: RoutingSchema) {
    if (a.layers.length !== b.layers.length || a.layers.some((_, l) => expertsAt(a, l) !== expertsAt(b, l)))
      throw new UserError(
        `traces route differently: ${a.layers.length} layers × ${a.experts} experts vs ${b.layers.length} × ${b.experts}`,
      );
    this.a = a;
    this.b = b;
    this.L = a.layers.length;
    this.overlapSum = new Float64Array(this.L);
    this.firstSame = new Float64Array(this.L);
    this.mark = new Int32Array(Math.max(a.experts, b.experts));
  }

  addA(batch: RoutingBatch): void {
    this.qa.push({ batch, offset: 0 });
    this.drain();
  }

  addB(batch: RoutingBatch): void {
    this.qb.push({ batch, offset: 0 });
    this.drain();
  }

  private drain(): void {
    while (this.qa.length > 0 && this.qb.length > 0) {
      const pa = this.qa[0]!;
      const pb = this.qb[0]!;
      const n = Math.min(pa.batch.length - pa.offset, pb.batch.length - pb.offset);
      for (let i = 0; i < n; i++) this.compare(pa.batch, pa.offset + i, pb.batch, pb.offset + i);
      pa.offset += n;
      pb.offset += n;
      if (pa.offset >= pa.batch.length) this.qa.shift();
      if (pb.offset >= pb.batch.length) this.qb.shift();
    }
  }

  private compare(ba: RoutingBatch, ta: number, bb: RoutingBatch, tb: number): void {
    if (ba.tokenId[ta] !== bb.tokenId[tb])
      throw new UserError(
        `traces diverge at token ${this.tokens}: token id ${ba.tokenId[ta]} vs ${bb.tokenId[tb]} — agreement needs the same tokens`,
      );
    // Slots per layer in the batch (the largest K), and each layer's own K (the slots past it are padding).
    const Sa = this.a.topK;
    const Sb = this.b.topK;
    for (let l = 0; l < this.L; l++) {
      const Ka = topKAt(this.a, l);
      const Kb = topKAt(this.b, l);
      const kmin = Math.min(Ka, Kb);
      const oa = (ta * this.L + l) * Sa;
      const ob = (tb * this.L + l) * Sb;
      const s = ++this.stamp;
      for (let j = 0; j < Ka; j++) this.mark[ba.experts[oa + j]!] = s;
      let common = 0;
      for (let j = 0; j < Kb; j++) {
        const x = bb.experts[ob + j]!;
        if (this.mark[x] === s) {
          common++;
          this.mark[x] = 0; // a repeated id in b counts once
        }
      }
      this.overlapSum[l]! += common / kmin;
      if (firstChoice(ba, oa, Ka) === firstChoice(bb, ob, Kb)) this.firstSame[l]!++;
    }
    this.tokens++;
  }

  /** Tokens left unmatched because one stream is longer. */
  get unmatched(): number {
    const left = (q: Pending[]) => q.reduce((s, p) => s + p.batch.length - p.offset, 0);
    return left(this.qa) + left(this.qb);
  }

  result(): AgreementResult {
    const n = this.tokens;
    const layers = this.a.layers.map((layer, l) => ({
      layer,
      overlap: n > 0 ? this.overlapSum[l]! / n : null,
      firstChoice: n > 0 ? this.firstSame[l]! / n : null,
    }));
    const mean = (f: (x: LayerAgreement) => number | null) =>
      n > 0 ? layers.reduce((s, x) => s + f(x)!, 0) / layers.length : null;
    return { tokens: n, layers, overlap: mean((x) => x.overlap), firstChoice: mean((x) => x.firstChoice) };
  }
}
