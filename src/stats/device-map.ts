/**
 * Per-layer device loads for one placement, many times over (the dashboard's history records them at every step):
 * `deviceLoads` (placement.ts) validates the loads and the placement and counts replicas on every call; a
 * DeviceMap does that once and then only adds — the same sums, in the same order, so the results are identical.
 */
import { deviceLoads, layerMap, replicaCounts, slotDevice, type Placement } from './placement.js';

export class DeviceMap {
  readonly devices: number;
  readonly layers: number;
  readonly experts: number;
  /** Per layer and slot: the device and the logical expert it holds, and 1 / replicas of that expert. */
  private readonly slotDev: Int32Array[];
  private readonly slotExpert: Int32Array[];
  private readonly share: Float64Array[];

  constructor(placement: Placement, layers: number, experts: number) {
    // deviceLoads on zero loads checks the shapes (and throws a UserError where they disagree) once, here.
    deviceLoads(
      Array.from({ length: layers }, () => new Float64Array(experts)),
      placement,
    );
    this.devices = placement.devices;
    this.layers = layers;
    this.experts = experts;
    this.slotDev = [];
    this.slotExpert = [];
    this.share = [];
    for (let l = 0; l < layers; l++) {
      const map = layerMap(placement, l);
      const cnt = replicaCounts(map, experts);
      const S = map.length;
      const dev = new Int32Array(S);
      const ex = new Int32Array(S);
      const sh = new Float64Array(S);
      for (let s = 0; s < S; s++) {
        dev[s] = slotDevice(s, S, this.devices);
        ex[s] = map[s]!;
        sh[s] = cnt[map[s]!]!;
      }
      this.slotDev.push(dev);
      this.slotExpert.push(ex);
      this.share.push(sh);
    }
  }

  /** Loads of layer l's devices from `counts` (L·E, index l·E + e) into `out` (length ≥ devices), as deviceLoads. */
  layerInto(counts: ArrayLike<number>, l: number, out: Float64Array): Float64Array {
    out.fill(0, 0, this.devices);
    const dev = this.slotDev[l]!;
    const ex = this.slotExpert[l]!;
    const cnt = this.share[l]!;
    const base = l * this.experts;
    for (let s = 0; s < dev.length; s++) out[dev[s]!]! += counts[base + ex[s]!]! / cnt[s]!;
    return out;
  }
}
