/**
 * Expert placement: which logical expert each physical expert slot holds, and which device each slot lives on —
 * and the per-device load that follows from per-expert loads. Conventions (docs/placement.md):
 *  - a placement lists, per layer, physical slot → logical expert (`phy2log`, as SGLang, vLLM and DeepSeek's EPLB
 *    call it); slot s of S lies on device ⌊s·D/S⌋, i.e. consecutive slots, S/D per device when D divides S;
 *  - a logical expert with r replicas sends 1/r of its load to each replica (EPLB's own assumption).
 */
import { UserError } from '../core/errors.js';

/** Per layer, one number per logical expert: token assignments counted, or any non-negative load estimate. */
export type LayerLoads = readonly ArrayLike<number>[];

export interface Placement {
  /** Devices (GPUs, EP ranks) the slots are spread over. */
  devices: number;
  /**
   * Per layer, physical slot → logical expert. One map for every layer, or a single map that all layers share.
   * Every map has the same number of slots S.
   */
  phy2log: readonly ArrayLike<number>[];
}

/** The device slot `slot` of `slots` lives on: ⌊slot·D/S⌋ (contiguous runs; S/D per device when D divides S). */
export function slotDevice(slot: number, slots: number, devices: number): number {
  return Math.floor((slot * devices) / slots);
}

/**
 * Expert-parallel default with no replicas: logical expert e in slot e, so on device ⌊e·D/E⌋
 * (SGLang's and vLLM's initial placement when there are no redundant experts). Shared by all layers.
 */
export function contiguousPlacement(experts: number, devices: number): Placement {
  checkCount('experts', experts);
  checkCount('devices', devices);
  const map = new Int32Array(experts);
  for (let e = 0; e < experts; e++) map[e] = e;
  return { devices, phy2log: [map] };
}

/** Replicas of each of `experts` logical experts in one layer's slot map. */
export function replicaCounts(phy2log: ArrayLike<number>, experts: number): Int32Array {
  const cnt = new Int32Array(experts);
  for (let s = 0; s < phy2log.length; s++) {
    const e = phy2log[s]!;
    if (!Number.isInteger(e) || e < 0 || e >= experts)
      throw new UserError(`placement slot ${s} holds expert ${e}, but there are ${experts} experts`);
    cnt[e]!++;
  }
  return cnt;
}

/** Validates a load matrix: at least one layer, every layer the same length ≥ 1, finite non-negative numbers. */
export function checkLoads(loads: LayerLoads): { layers: number; experts: number } {
  if (loads.length === 0) throw new UserError('expert loads have no layers');
  const experts = loads[0]!.length;
  if (experts === 0) throw new UserError('expert loads of layer 0 are empty');
  for (let l = 0; l < loads.length; l++) {
    const row = loads[l]!;
    if (row.length !== experts)
      throw new UserError(`expert loads are ragged: layer ${l} has ${row.length} experts, layer 0 has ${experts}`);
    for (let e = 0; e < experts; e++) {
      const v = row[e]!;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        const shown = typeof v === 'number' ? String(v) : JSON.stringify(v);
        throw new UserError(`expert load of layer ${l}, expert ${e} is ${shown}; loads must be finite numbers ≥ 0`);
      }
    }
  }
  return { layers: loads.length, experts };
}

/** The slot map `placement` uses for layer l (a single map is shared by every layer). */
export function layerMap(placement: Placement, layer: number): ArrayLike<number> {
  const maps = placement.phy2log;
  return maps.length === 1 ? maps[0]! : maps[layer]!;
}

/**
 * Per layer, per device: the load each device receives under `placement`, each logical expert's load split evenly
 * over its replicas. Throws a UserError when shapes disagree or a loaded expert has no slot.
 */
export function deviceLoads(loads: LayerLoads, placement: Placement): Float64Array[] {
  const { layers, experts } = checkLoads(loads);
  const devices = placement.devices;
  checkCount('devices', devices);
  const maps = placement.phy2log;
  if (maps.length !== 1 && maps.length !== layers)
    throw new UserError(`placement has ${maps.length} layers, loads have ${layers}`);
  const slots = maps[0]!.length;
  if (slots === 0) throw new UserError('placement has no slots');
  const out: Float64Array[] = [];
  for (let l = 0; l < layers; l++) {
    const map = layerMap(placement, l);
    if (map.length !== slots) throw new UserError(`placement layer ${l} has ${map.length} slots, layer 0 has ${slots}`);
    const load = loads[l]!;
    const cnt = replicaCounts(map, experts);
    for (let e = 0; e < experts; e++)
      if (cnt[e] === 0 && load[e]! > 0)
        throw new UserError(`expert ${e} of layer ${l} has load ${load[e]} but no slot in the placement`);
    const dev = new Float64Array(devices);
    for (let s = 0; s < slots; s++) {
      const e = map[s]!;
      dev[slotDevice(s, slots, devices)]! += load[e]! / cnt[e]!;
    }
    out.push(dev);
  }
  return out;
}

function checkCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${name} must be a whole number ≥ 1, got ${n}`);
}
