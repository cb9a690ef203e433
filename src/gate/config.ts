/**
 * moescope.config.json: thresholds for `check` and `diff`, validated with messages that name the key and the
 * problem (docs/ci.md § Config). Flags given on the command line replace the file's `thresholds` values.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { RULES, RULE_KEYS, type RuleKey, type Thresholds } from './rules.js';

const DEFAULT_CONFIG = 'moescope.config.json';

export interface DiffThresholds {
  /** Largest allowed Jensen–Shannon divergence (base 2) between a layer's load distributions. */
  maxDrift?: number;
  /** Largest allowed total variation distance between a layer's load distributions. */
  maxTv?: number;
  /** Smallest allowed router agreement (mean |TopK_base ∩ TopK_new| / K) on identical tokens. */
  minAgreement?: number;
}

export interface GateConfig {
  /** The file it came from; null when built from flags only. */
  source: string | null;
  /** Limits every checked layer must meet. */
  thresholds: Thresholds;
  /** Limits on the model as a whole (the layers' aggregate, see docs/ci.md). */
  overall: Thresholds;
  /** Limits that replace `thresholds` for one layer (model layer id). */
  perLayer: Map<number, Thresholds>;
  /** Only these MoE layers (model layer ids); null = all. */
  layers: number[] | null;
  diff: DiffThresholds;
  /** Rules whose `thresholds` value came from a command-line flag (for naming the source of a limit). */
  flagged: Set<string>;
}

export function emptyConfig(): GateConfig {
  return { source: null, thresholds: {}, overall: {}, perLayer: new Map(), layers: null, diff: {}, flagged: new Set() };
}

const TOP_KEYS = ['$schema', 'thresholds', 'overall', 'perLayer', 'layers', 'diff'] as const;
const DIFF_KEYS = ['maxDrift', 'maxTv', 'minAgreement'] as const;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `"${v}"`;
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** "maxMaxVio" → "maxMaxvio": the closest known key (case-insensitive, ignoring - and _), for the error message. */
function suggest(key: string, known: readonly string[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const hit = known.find((k) => norm(k) === norm(key));
  return hit ? ` (did you mean "${hit}"?)` : ` (known keys: ${known.join(', ')})`;
}

function rejectUnknown(obj: Record<string, Json>, known: readonly string[], where: string, path: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw new UserError(`${where}: unknown key ${path}${k}${suggest(k, known)}`);
  }
}

function checkLimit(value: Json, where: string, path: string, integer: boolean, upper: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new UserError(`${where}: ${path} must be a number, got ${describe(value)}`);
  if (value < 0) throw new UserError(`${where}: ${path} must be ≥ 0, got ${value}`);
  if (integer && !Number.isInteger(value))
    throw new UserError(`${where}: ${path} must be a whole number, got ${value}`);
  if (value > upper) throw new UserError(`${where}: ${path} must be ≤ ${upper}, got ${value}`);
  return value;
}

function parseThresholds(raw: Json, where: string, path: string): Thresholds {
  if (!isObject(raw)) throw new UserError(`${where}: ${path} must be an object of limits, got ${describe(raw)}`);
  rejectUnknown(raw, RULE_KEYS, where, `${path}.`);
  const out: Thresholds = {};
  for (const rule of RULES) {
    const v = raw[rule.key];
    if (v !== undefined) out[rule.key] = checkLimit(v, where, `${path}.${rule.key}`, rule.integer, rule.upper);
  }
  return out;
}

function parseLayerId(s: string, where: string, path: string): number {
  if (!/^\d+$/.test(s)) throw new UserError(`${where}: ${path} key "${s}" is not a layer id (a non-negative integer)`);
  return Number(s);
}

/** Validates a parsed config object; `where` names its source in messages. */
export function parseConfig(raw: unknown, where: string): GateConfig {
  if (!isObject(raw)) throw new UserError(`${where}: the config must be a JSON object, got ${describe(raw)}`);
  rejectUnknown(raw, TOP_KEYS, where, '');
  const cfg = emptyConfig();
  cfg.source = where;
  if (raw.thresholds !== undefined) cfg.thresholds = parseThresholds(raw.thresholds, where, 'thresholds');
  if (raw.overall !== undefined) cfg.overall = parseThresholds(raw.overall, where, 'overall');
  if (raw.perLayer !== undefined) {
    const pl = raw.perLayer;
    if (!isObject(pl))
      throw new UserError(`${where}: perLayer must be an object keyed by layer id, got ${describe(pl)}`);
    for (const [k, v] of Object.entries(pl)) {
      cfg.perLayer.set(parseLayerId(k, where, 'perLayer'), parseThresholds(v, where, `perLayer.${k}`));
    }
  }
  if (raw.layers !== undefined) {
    const l = raw.layers;
    if (!Array.isArray(l) || l.length === 0 || l.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0))
      throw new UserError(
        `${where}: layers must be a non-empty list of layer ids (non-negative integers), got ${JSON.stringify(l)}`,
      );
    cfg.layers = l as number[];
  }
  if (raw.diff !== undefined) {
    const d = raw.diff;
    if (!isObject(d)) throw new UserError(`${where}: diff must be an object, got ${describe(d)}`);
    rejectUnknown(d, DIFF_KEYS, where, 'diff.');
    if (d.maxDrift !== undefined) cfg.diff.maxDrift = checkLimit(d.maxDrift, where, 'diff.maxDrift', false, 1);
    if (d.maxTv !== undefined) cfg.diff.maxTv = checkLimit(d.maxTv, where, 'diff.maxTv', false, 1);
    if (d.minAgreement !== undefined)
      cfg.diff.minAgreement = checkLimit(d.minAgreement, where, 'diff.minAgreement', false, 1);
  }
  return cfg;
}

/** Line and column of a JSON.parse error position, for the message. */
function jsonErrorAt(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return '';
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return ` at line ${line}, column ${col}`;
}

/**
 * Reads the config: `explicit` (from --config) must exist; otherwise moescope.config.json in `cwd` is read when
 * present. Returns an empty config when there is none.
 */
export function loadConfig(explicit: string | undefined, cwd = process.cwd()): GateConfig {
  const path = explicit !== undefined ? resolve(cwd, explicit) : resolve(cwd, DEFAULT_CONFIG);
  if (!existsSync(path)) {
    if (explicit !== undefined) throw new UserError(`config file not found: ${explicit}`);
    return emptyConfig();
  }
  const where = explicit ?? DEFAULT_CONFIG;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read config ${where}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0] ?? '';
    const reason = msg.replace(/ in JSON at position \d+.*$/, '').replace(/ \(line \d+ column \d+\)$/, '');
    throw new UserError(`${where} is not valid JSON${jsonErrorAt(text, msg)}: ${reason}`);
  }
  return parseConfig(raw, where);
}

/** Flag values as commander parses them (undefined = not given). */
export type ThresholdFlags = Partial<Record<RuleKey, number>> & { layers?: number[] };

/** The config with command-line limits replacing its `thresholds` values and --layers replacing `layers`. */
export function withFlags(cfg: GateConfig, flags: ThresholdFlags): GateConfig {
  const thresholds: Thresholds = { ...cfg.thresholds };
  const flagged = new Set(cfg.flagged);
  for (const key of RULE_KEYS) {
    const v = flags[key];
    if (v !== undefined) {
      const rule = RULES.find((r) => r.key === key)!;
      // commander has checked ≥ 0; the upper bound and integrality are rule-specific.
      checkLimit(v, 'command line', rule.flag, rule.integer, rule.upper);
      thresholds[key] = v;
      flagged.add(key);
    }
  }
  return { ...cfg, thresholds, flagged, layers: flags.layers ?? cfg.layers };
}

/** Whether any limit is set for `check`. */
export function hasCheckRules(cfg: GateConfig): boolean {
  const any = (t: Thresholds) => Object.keys(t).length > 0;
  return any(cfg.thresholds) || any(cfg.overall) || [...cfg.perLayer.values()].some(any);
}

export type DiffFlags = DiffThresholds & { layers?: number[] };

/** The config with --max-drift / --max-tv / --min-agreement replacing its `diff` values. */
export function withDiffFlags(cfg: GateConfig, flags: DiffFlags): GateConfig {
  const diff: DiffThresholds = { ...cfg.diff };
  const flagged = new Set(cfg.flagged);
  const names: Record<keyof DiffThresholds, string> = {
    maxDrift: '--max-drift',
    maxTv: '--max-tv',
    minAgreement: '--min-agreement',
  };
  for (const k of DIFF_KEYS) {
    const v = flags[k];
    if (v === undefined) continue;
    diff[k] = checkLimit(v, 'command line', names[k], false, 1);
    flagged.add(`diff.${k}`);
  }
  return { ...cfg, diff, flagged, layers: flags.layers ?? cfg.layers };
}

/** Whether any limit reads router logits (z-loss). */
export function needsLogits(cfg: GateConfig): boolean {
  const uses = (t: Thresholds) => RULES.some((r) => r.needsLogits && t[r.key] !== undefined);
  return uses(cfg.thresholds) || uses(cfg.overall) || [...cfg.perLayer.values()].some(uses);
}
