/** The sigmoid router's per-logit functions, shared by the exact scorer (scores.ts) and the tables of row-kernel.ts. */

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** ln σ(x) = −softplus(−x), computed without overflow on either side. */
export function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}
