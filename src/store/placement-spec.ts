/**
 * Where experts live, for the Devices view: contiguous over D devices (--devices D), or a plan file written by
 * `moescope plan --json` (its phy2log and gpus). The load that follows is computed by src/stats/placement.ts.
 */
import { readFileSync } from 'node:fs';
import { expertsAt, mixedShapes, type RoutingSchema } from '../core/batch.js';
import { UserError, describeError } from '../core/errors.js';
import { contiguousPlacement, replicaCounts, type Placement } from '../stats/placement.js';

export interface PlacementSpec {
  placement: Placement;
  /** How the view describes it: "contiguous", "plan.json (EPLB)". */
  label: string;
}

/** Contiguous placement over `devices` (null for one device: nothing to show). */
export function contiguousSpec(schema: RoutingSchema, devices: number): PlacementSpec | null {
  if (devices <= 1) return null;
  if (!mixedShapes(schema))
    return { placement: contiguousPlacement(schema.experts, Math.min(devices, schema.experts)), label: 'contiguous' };
  // Layers that differ in E: each layer's own experts spread over the same devices (one map per layer, each as
  // long as its layer's E); no more devices than the smallest layer has experts.
  const E = schema.layers.map((_, l) => expertsAt(schema, l));
  const D = Math.min(devices, ...E);
  return {
    placement: { devices: D, phy2log: E.map((e) => contiguousPlacement(e, D).phy2log[0]!) },
    label: 'contiguous',
  };
}

/** Reads `moescope plan --json` output: { gpus, phy2log: [[logical expert per slot] per layer] }. */
export function readPlanFile(path: string, schema: RoutingSchema): PlacementSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read plan ${path}: ${describeError(e)}`);
  }
  const o = raw as { gpus?: unknown; phy2log?: unknown; policy?: unknown };
  if (typeof o !== 'object' || o === null || !Number.isInteger(o.gpus) || !Array.isArray(o.phy2log))
    throw new UserError(
      `${path}: not a placement plan (expected "gpus" and "phy2log" as written by moescope plan --json)`,
    );
  if (mixedShapes(schema))
    throw new UserError(
      `${path}: a plan for a model whose layers differ in experts/k is not supported yet (use --devices)`,
    );
  const maps = o.phy2log as unknown[];
  const L = schema.layers.length;
  if (maps.length !== 1 && maps.length !== L)
    throw new UserError(`${path}: the plan has ${maps.length} layers, the stream has ${L} MoE layers`);
  const phy2log = maps.map((m, l) => {
    if (!Array.isArray(m) || m.some((x) => !Number.isInteger(x)))
      throw new UserError(`${path}: phy2log of layer ${l} is not a list of expert ids`);
    replicaCounts(m as number[], schema.experts); // throws on an id ≥ E
    return Int32Array.from(m as number[]);
  });
  const gpus = o.gpus as number;
  if (gpus < 1 || phy2log.some((m) => m.length !== phy2log[0]!.length || m.length < gpus))
    throw new UserError(`${path}: every layer needs the same number of slots, at least one per GPU`);
  return {
    placement: { devices: gpus, phy2log },
    label: `${path.slice(path.lastIndexOf('/') + 1)}${typeof o.policy === 'string' ? ` (EPLB ${o.policy})` : ''}`,
  };
}
