/**
 * DeepSeek's expert-parallel load balancer (EPLB, github.com/deepseek-ai/EPLB, eplb.py at d52c72d), reimplemented
 * so that it returns the same placement as the Python original, tie for tie:
 *  - arithmetic in float32 like the original (`weight.float()`; Math.fround after every operation);
 *  - items are visited in the order of PyTorch's unstable CPU sort (eplb-sort.ts);
 *  - "the lightest pack" and "the heaviest expert" are the first in index order among equals (Python `min`,
 *    `torch.max(dim)`).
 *
 * Policy: hierarchical when the groups divide over the nodes — pack expert groups onto nodes, replicate the
 * hottest experts within each node, pack the replicas onto the node's GPUs; global otherwise (the same steps with
 * one group and one node). See docs/placement.md.
 */
import { UserError } from '../core/errors.js';
import { introsortDescending } from './eplb-sort.js';
import { checkLoads, type LayerLoads } from './placement.js';

const f32 = Math.fround;

export type EplbPolicy = 'hierarchical' | 'global';

export interface EplbPlan {
  policy: EplbPolicy;
  /** [layer][physical slot] → logical expert; slots split evenly over GPUs, numReplicas / numGpus each. */
  phy2log: number[][];
  /** [layer][logical expert][replica] → physical slot, padded with -1 to the largest replica count of any layer. */
  log2phy: number[][][];
  /** [layer][logical expert] → number of replicas. */
  logcnt: number[][];
  /** [layer][physical slot] → which replica (0, 1, …) of its logical expert the slot holds. */
  phyrank: number[][];
}

/**
 * EPLB's `rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus)`.
 * `weight[layer][expert]` is each logical expert's load. Throws a UserError on inputs the original rejects
 * (and on a cluster whose GPUs do not split evenly over nodes or groups that do not divide the experts).
 */
export function rebalanceExperts(
  weight: LayerLoads,
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
): EplbPlan {
  const { layers, experts } = checkLoads(weight);
  checkShape(experts, numReplicas, numGroups, numNodes, numGpus);
  const w = weight.map((row) => Float64Array.from(row, f32));
  const hierarchical = numGroups % numNodes === 0;
  const r = hierarchical
    ? rebalanceHierarchical(w, numReplicas, numGroups, numNodes, numGpus)
    : rebalanceHierarchical(w, numReplicas, 1, 1, numGpus);

  let maxCnt = 0;
  for (const row of r.logcnt) for (const c of row) if (c > maxCnt) maxCnt = c;
  const log2phy: number[][][] = [];
  for (let l = 0; l < layers; l++) {
    const m = Array.from({ length: experts }, () => new Array<number>(maxCnt).fill(-1));
    for (let p = 0; p < numReplicas; p++) m[r.phy2log[l]![p]!]![r.phyrank[l]![p]!] = p;
    log2phy.push(m);
  }
  return {
    policy: hierarchical ? 'hierarchical' : 'global',
    phy2log: r.phy2log.map((a) => Array.from(a)),
    log2phy,
    logcnt: r.logcnt.map((a) => Array.from(a)),
    phyrank: r.phyrank.map((a) => Array.from(a)),
  };
}

function checkShape(experts: number, replicas: number, groups: number, nodes: number, gpus: number): void {
  for (const [name, v] of [
    ['replicas', replicas],
    ['groups', groups],
    ['nodes', nodes],
    ['gpus', gpus],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new UserError(`${name} must be a whole number ≥ 1, got ${v}`);
  if (replicas < experts) throw new UserError(`replicas (${replicas}) must be ≥ the number of experts (${experts})`);
  if (replicas % gpus !== 0) throw new UserError(`replicas (${replicas}) must be a multiple of gpus (${gpus})`);
  if (gpus % nodes !== 0) throw new UserError(`gpus (${gpus}) must be a multiple of nodes (${nodes})`);
  if (experts % groups !== 0) throw new UserError(`groups (${groups}) must divide the number of experts (${experts})`);
}

interface Packing {
  pack: Int32Array;
  rank: Int32Array;
}

/**
 * `balanced_packing` for one row: n items into `packs` packs of exactly n/packs items. Heaviest item first (sort
 * order of eplb-sort.ts), each into the lightest pack that still has room (first such pack on ties).
 */
function balancedPacking(w: Float64Array, packs: number): Packing {
  const n = w.length;
  const per = n / packs;
  const pack = new Int32Array(n);
  const rank = new Int32Array(n);
  if (per === 1) {
    for (let i = 0; i < n; i++) pack[i] = i;
    return { pack, rank };
  }
  const packWeight = new Float64Array(packs);
  const packItems = new Int32Array(packs);
  for (const item of introsortDescending(w)) {
    let best = -1;
    for (let p = 0; p < packs; p++)
      if (packItems[p]! < per && (best < 0 || packWeight[p]! < packWeight[best]!)) best = p;
    pack[item] = best;
    rank[item] = packItems[best]!;
    packWeight[best] = f32(packWeight[best]! + w[item]!);
    packItems[best]!++;
  }
  return { pack, rank };
}

interface Replication {
  phy2log: Int32Array;
  rank: Int32Array;
  logcnt: Int32Array;
}

/** `replicate_experts` for one row: each extra slot goes to the expert with the largest load per replica. */
function replicateExperts(w: Float64Array, numPhy: number): Replication {
  const numLog = w.length;
  const phy2log = new Int32Array(numPhy);
  const rank = new Int32Array(numPhy);
  const logcnt = new Int32Array(numLog).fill(1);
  for (let i = 0; i < numLog; i++) phy2log[i] = i;
  for (let i = numLog; i < numPhy; i++) {
    let best = 0;
    let bestLoad = f32(w[0]! / logcnt[0]!);
    for (let e = 1; e < numLog; e++) {
      const v = f32(w[e]! / logcnt[e]!);
      if (v > bestLoad) {
        best = e;
        bestLoad = v;
      }
    }
    phy2log[i] = best;
    rank[i] = logcnt[best]!;
    logcnt[best]!++;
  }
  return { phy2log, rank, logcnt };
}

function inverse(perm: Int32Array): Int32Array {
  const inv = new Int32Array(perm.length);
  for (let i = 0; i < perm.length; i++) inv[perm[i]!] = i;
  return inv;
}

interface RawPlan {
  phy2log: Int32Array[];
  phyrank: Int32Array[];
  logcnt: Int32Array[];
}

/**
 * `rebalance_experts_hierarchical`. Index spaces: log (logical expert), mlog (logical experts renumbered so each
 * node's experts are contiguous, node n owning [n·E/N, (n+1)·E/N)), phy (a node's replicas, before packing),
 * pphy (final slot: node, then GPU, then rank on the GPU).
 */
function rebalanceHierarchical(
  w: Float64Array[],
  numPhy: number,
  groups: number,
  nodes: number,
  gpus: number,
): RawPlan {
  const experts = w[0]!.length;
  const groupSize = experts / groups;
  const groupsPerNode = groups / nodes;
  const phyPerGpu = numPhy / gpus;
  const logPerNode = experts / nodes;
  const phyPerNode = numPhy / nodes;
  const gpusPerNode = gpus / nodes;
  const out: RawPlan = { phy2log: [], phyrank: [], logcnt: [] };

  for (const row of w) {
    // Step 1: pack groups onto nodes by their summed load.
    const groupLoad = new Float64Array(groups);
    for (let g = 0; g < groups; g++) {
      let s = 0;
      for (let k = 0; k < groupSize; k++) s = f32(s + row[g * groupSize + k]!);
      groupLoad[g] = s;
    }
    const gp = balancedPacking(groupLoad, nodes);
    const log2mlog = new Int32Array(experts);
    for (let g = 0; g < groups; g++) {
      const base = (gp.pack[g]! * groupsPerNode + gp.rank[g]!) * groupSize;
      for (let k = 0; k < groupSize; k++) log2mlog[g * groupSize + k] = base + k;
    }
    const mlog2log = inverse(log2mlog);

    const phy2log = new Int32Array(numPhy);
    const phyrank = new Int32Array(numPhy);
    const mlogcnt = new Int32Array(experts);
    for (let n = 0; n < nodes; n++) {
      // Step 2: replicate hot experts within the node.
      const nodeLoad = new Float64Array(logPerNode);
      for (let j = 0; j < logPerNode; j++) nodeLoad[j] = row[mlog2log[n * logPerNode + j]!]!;
      const rep = replicateExperts(nodeLoad, phyPerNode);
      mlogcnt.set(rep.logcnt, n * logPerNode);

      // Step 3: pack the node's replicas onto its GPUs by load per replica.
      const replicaLoad = new Float64Array(phyPerNode);
      for (let p = 0; p < phyPerNode; p++) {
        const j = rep.phy2log[p]!;
        replicaLoad[p] = f32(nodeLoad[j]! / rep.logcnt[j]!);
      }
      const pk = balancedPacking(replicaLoad, gpusPerNode);
      const phy2pphy = new Int32Array(phyPerNode);
      for (let p = 0; p < phyPerNode; p++) phy2pphy[p] = pk.pack[p]! * phyPerGpu + pk.rank[p]!;
      const pphy2phy = inverse(phy2pphy);
      for (let q = 0; q < phyPerNode; q++) {
        const p = pphy2phy[q]!;
        phy2log[n * phyPerNode + q] = mlog2log[rep.phy2log[p]! + n * logPerNode]!;
        phyrank[n * phyPerNode + q] = rep.rank[p]!;
      }
    }
    const logcnt = new Int32Array(experts);
    for (let e = 0; e < experts; e++) logcnt[e] = mlogcnt[log2mlog[e]!]!;
    out.phy2log.push(phy2log);
    out.phyrank.push(phyrank);
    out.logcnt.push(logcnt);
  }
  return out;
}
