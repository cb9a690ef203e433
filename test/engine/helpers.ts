import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../src/core/paths.js';

export const MODELS = join(FIXTURES, 'models');

export interface FixtureMeta {
  family: string;
  exporter: string;
  kvCache: boolean;
  moeLayers: number[];
  /** One number, or each MoE layer's own, in layer order (hf-mixed-shape). */
  experts: number | number[];
  topK: number | number[];
  scoring?: string;
  numLayers: number;
  nGroup?: number;
  topkGroup?: number;
  nSharedExperts?: number;
  routedScalingFactor?: number;
  normTopkProb?: boolean;
  /** LongCat-Flash: the router ids ≥ n_routed_experts, and what transformers computes for them (nn.Identity). */
  zeroExperts?: { ids: number[]; kind: string };
}

export interface Reference {
  inputIds: number[][];
  domains?: string[];
  moeLayers: number[];
  /** One number, or each MoE layer's own (hf-mixed-shape). */
  experts: number | number[];
  topK: number | number[];
  routing: { experts: number[][][]; weights: number[][][]; logits?: number[][][] }[];
  generate?: { inputIds: number[]; greedyTokens: number[] };
}

export function modelPath(name: string): string {
  return join(MODELS, name, 'model.onnx');
}

export function hasFixture(name: string): boolean {
  return existsSync(modelPath(name)) && existsSync(join(MODELS, name, 'meta.json'));
}

export function meta(name: string): FixtureMeta {
  return JSON.parse(readFileSync(join(MODELS, name, 'meta.json'), 'utf8')) as FixtureMeta;
}

export function reference(name: string): Reference {
  return JSON.parse(readFileSync(join(MODELS, name, 'reference.json'), 'utf8')) as Reference;
}

/** Every fixture model with MoE layers (the list; the ones not generated yet are skipped with a note). */
export const MOE_FIXTURES = [
  'hf-mixtral',
  'hf-qwen3-moe',
  'hf-olmoe',
  'hf-qwen2-moe',
  'hf-deepseek-v3',
  'hf-phimoe',
  'fused-moe',
  'external-data',
  'tiny-moe',
  'tiny-switch',
  'tiny-deepseek',
  'hf-mixed-shape',
  'hf-longcat-flash',
];

export function sameSet(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  const x = Array.from(a).sort((p, q) => p - q);
  const y = Array.from(b).sort((p, q) => p - q);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
