/**
 * Where experts live, for the Devices view: contiguous over D devices (--devices D), or a plan file written by
 * `moescope plan --json` (its phy2log and gpus). The load that follows is computed by src/stats/placement.ts.
 */
import { readFileSync } from 'node:fs';
import { describeLayerShapes, expertsAt, mixedShapes, type RoutingSchema } from '../core/batch.js';
import { shapeGroups } from '../core/shapes.js';
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

/**
 * Reads `moescope plan --json` output: { gpus, phy2log: [[logical expert per slot] per layer] }; for a model whose
 * layers differ in E or K, its one-plan-per-shape form: { layers, shapes: [{ shape: {experts, topK}, gpus, phy2log
 * }] }, each shape's maps over its own layers and experts, all on the same GPUs (each layer placed on its own, as
 * contiguousSpec does).
 */
export function readPlanFile(path: string, schema: RoutingSchema): PlacementSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read plan ${path}: ${describeError(e)}`);
  }
  const o = raw as { gpus?: unknown; phy2log?: unknown; policy?: unknown; shapes?: unknown };
  const perShape = typeof o === 'object' && o !== null && Array.isArray(o.shapes);
  if (typeof o !== 'object' || o === null || (!perShape && (!Number.isInteger(o.gpus) || !Array.isArray(o.phy2log))))
    throw new UserError(
      `${path}: not a placement plan (expected "gpus" and "phy2log" as written by moescope plan --json)`,
    );
  const label = (policy: unknown) =>
    `${path.slice(path.lastIndexOf('/') + 1)}${typeof policy === 'string' ? ` (EPLB ${policy})` : ''}`;
  if (perShape !== mixedShapes(schema))
    throw new UserError(
      perShape
        ? `${path}: a plan per shape (layers that differ in experts/k), the stream's layers have one shape: ${schema.experts} experts top-${schema.topK}`
        : `${path}: a plan for layers of one shape, the stream's layers differ in experts/k (${describeLayerShapes(schema)}): make the plan from this model's routing (moescope plan)`,
    );
  if (!perShape) {
    const phy2log = planMaps(path, o.phy2log as unknown[], schema.layers.length, schema.experts, '');
    return { placement: { devices: checkSlots(path, o.gpus as number, phy2log, ''), phy2log }, label: label(o.policy) };
  }
  // One plan per shape: the stream's shape groups, in the same order, each with its layers' maps.
  const groups = shapeGroups(schema);
  const plans = o.shapes as { shape?: { experts?: unknown; topK?: unknown }; gpus?: unknown; phy2log?: unknown }[];
  const want = groups.map((g) => `${g.schema.experts} experts top-${g.schema.topK}`).join(', ');
  const got = plans.map((p) => `${p?.shape?.experts} experts top-${p?.shape?.topK}`).join(', ');
  if (got !== want)
    throw new UserError(`${path}: the plan's shapes are ${got}; the stream's layers are ${want} (in layer order)`);
  const phy2log: Int32Array[] = new Array(schema.layers.length);
  let devices = 0;
  groups.forEach((g, i) => {
    const p = plans[i]!;
    const where = ` (${g.schema.experts} experts top-${g.schema.topK})`;
    if (!Number.isInteger(p.gpus) || !Array.isArray(p.phy2log))
      throw new UserError(`${path}: shape ${i + 1}${where} has no "gpus" and "phy2log"`);
    if (i > 0 && p.gpus !== devices)
      throw new UserError(`${path}: shape ${i + 1}${where} is placed on ${p.gpus} GPUs, shape 1 on ${devices}`);
    const maps = planMaps(path, p.phy2log as unknown[], g.positions.length, g.schema.experts, where);
    devices = checkSlots(path, p.gpus as number, maps, where);
    g.positions.forEach((l, j) => {
      phy2log[l] = maps.length === 1 ? maps[0]! : maps[j]!;
    });
  });
  return { placement: { devices, phy2log }, label: label((plans[0] as { policy?: unknown }).policy) };
}

/** A plan's phy2log for `layers` layers of `experts` experts: one map per layer, or one for all. */
function planMaps(path: string, maps: unknown[], layers: number, experts: number, where: string): Int32Array[] {
  if (maps.length !== 1 && maps.length !== layers)
    throw new UserError(`${path}: the plan${where} has ${maps.length} layers, the stream has ${layers} MoE layers`);
  return maps.map((m, l) => {
    if (!Array.isArray(m) || m.some((x) => !Number.isInteger(x)))
      throw new UserError(`${path}: phy2log${where} of layer ${l} is not a list of expert ids`);
    replicaCounts(m as number[], experts); // throws on an id ≥ E
    return Int32Array.from(m as number[]);
  });
}

/** The GPU count, once every map has as many slots as the first and at least one per GPU. */
function checkSlots(path: string, gpus: number, maps: Int32Array[], where: string): number {
  if (gpus < 1 || maps.some((m) => m.length !== maps[0]!.length || m.length < gpus))
    throw new UserError(`${path}: every layer${where} needs the same number of slots, at least one per GPU`);
  return gpus;
}
