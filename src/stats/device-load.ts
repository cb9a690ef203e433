/**
 * Per-device totals over all layers under a placement: token load (from the per-layer device loads of
 * placement.ts `deviceLoads`), its share and its ratio to the even share, expert slots and expert weight bytes.
 * Used by the Devices view and `moescope plan`. Formulas: docs/metrics.md § Per-device load and weights.
 */
import { layerMap, slotDevice, type Placement } from './placement.js';

/** Per device d, its load summed over layers: Σ_l x[l, d] (x: per layer, per device, as deviceLoads gives). */
export function deviceTotals(devices: readonly ArrayLike<number>[]): number[] {
  const D = devices.length > 0 ? devices[0]!.length : 0;
  const totals = new Array<number>(D).fill(0);
  for (const row of devices) for (let d = 0; d < D; d++) totals[d]! += row[d]!;
  return totals;
}

export interface DeviceShares {
  /** Per device, its load summed over layers. */
  totals: number[];
  /** Σ_l Σ_d x[l, d]. */
  total: number;
  /** totals[d] / total: 1/D each when even; 0 for every device when there is no load. */
  shares: number[];
  /** shares[d] ÷ 1/D = shares[d] · D: 1 = even, 2 = twice its fair part; 0 when there is no load. */
  relative: number[];
}

/** Each device's share of all load over all layers, and that share relative to the even share 1/D. */
export function deviceShares(devices: readonly ArrayLike<number>[]): DeviceShares {
  const totals = deviceTotals(devices);
  const D = totals.length;
  let total = 0;
  for (const row of devices) for (let d = 0; d < D; d++) total += row[d]!;
  return {
    totals,
    total,
    shares: totals.map((t) => (total > 0 ? t / total : 0)),
    relative: totals.map((t) => (total > 0 ? (t / total) * D : 0)),
  };
}

/** Expert slots (replicas included) on each device, averaged over `layers` layers. */
export function deviceSlotsPerLayer(placement: Placement, layers: number): number[] {
  const D = placement.devices;
  const slots = new Array<number>(D).fill(0);
  for (let l = 0; l < layers; l++) {
    const map = layerMap(placement, l);
    for (let s = 0; s < map.length; s++) slots[slotDevice(s, map.length, D)]!++;
  }
  return slots.map((n) => n / layers);
}

/**
 * Expert weight bytes on each device over all layers: Σ_l (slots of layer l on d) · expertBytes[l], one entry of
 * `expertBytes` per layer (bytes of one expert of that layer; a replica costs a full copy).
 */
export function deviceWeightBytes(placement: Placement, expertBytes: readonly number[]): number[] {
  const D = placement.devices;
  const bytes = new Array<number>(D).fill(0);
  for (let l = 0; l < expertBytes.length; l++) {
    const map = layerMap(placement, l);
    for (let s = 0; s < map.length; s++) bytes[slotDevice(s, map.length, D)]! += expertBytes[l]!;
  }
  return bytes;
}
