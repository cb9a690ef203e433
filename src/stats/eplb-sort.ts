/**
 * The order in which DeepSeek's EPLB visits items when it packs them: `weight.sort(-1, descending=True)` on a CPU
 * float32 tensor. PyTorch's CPU sort with `stable=False` is libstdc++'s `std::sort` (introsort) on (key, index)
 * pairs compared by key only, so equal keys come out in introsort's order, not index order. Equal keys are the
 * normal case in EPLB (the replicas of one expert carry identical loads), and their order decides which GPU gets
 * which replica — so to produce the same placement as the Python original, this file reproduces that algorithm:
 * median-of-three quicksort down to runs of 16, heapsort past 2·⌊log2 n⌋ levels, then one insertion-sort pass.
 * Written from the algorithm's definition; test/stats/eplb.test.ts checks it against torch.sort's orders of tie-heavy
 * vectors (made by test/stats/reference/eplb_reference.py), and it matched g++'s std::sort on 3,000 more.
 */

/** Runs shorter than this are left for the final insertion sort (libstdc++ `_S_threshold`). */
const THRESHOLD = 16;

/**
 * Indices of `keys` ordered by descending key, ties broken exactly as libstdc++'s `std::sort` breaks them when it
 * sorts the pairs (key, index) with the comparator `a.key > b.key`. Keys must not be NaN.
 */
export function introsortDescending(keys: ArrayLike<number>): Int32Array {
  const n = keys.length;
  const idx = new Int32Array(n);
  const key = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    idx[i] = i;
    key[i] = keys[i]!;
  }
  if (n > 1) {
    new Introsort(key, idx).run(n);
  }
  return idx;
}

/** Sorts parallel arrays (key, idx) in place; "before(a, b)" is the strict comparator key[a] > key[b]. */
class Introsort {
  constructor(
    private readonly key: Float64Array,
    private readonly idx: Int32Array,
  ) {}

  run(n: number): void {
    this.loop(0, n, 2 * (31 - Math.clz32(n))); // 2·⌊log2 n⌋
    this.finalInsertion(0, n);
  }

  private swap(a: number, b: number): void {
    const k = this.key[a]!;
    this.key[a] = this.key[b]!;
    this.key[b] = k;
    const i = this.idx[a]!;
    this.idx[a] = this.idx[b]!;
    this.idx[b] = i;
  }

  private loop(first: number, last: number, depth: number): void {
    while (last - first > THRESHOLD) {
      if (depth === 0) {
        this.heapsort(first, last);
        return;
      }
      depth--;
      const cut = this.partitionPivot(first, last);
      this.loop(cut, last, depth);
      last = cut;
    }
  }

  /** Moves the median of (first+1, mid, last-1) to `first`, then partitions [first+1, last) around it. */
  private partitionPivot(first: number, last: number): number {
    const k = this.key;
    const a = first + 1;
    const b = first + ((last - first) >> 1);
    const c = last - 1;
    let m: number;
    if (k[a]! > k[b]!) {
      if (k[b]! > k[c]!) m = b;
      else if (k[a]! > k[c]!) m = c;
      else m = a;
    } else if (k[a]! > k[c]!) m = a;
    else if (k[b]! > k[c]!) m = c;
    else m = b;
    this.swap(first, m);
    // Unguarded Hoare partition: the pivot stays at `first`, the median guarantees both scans stop.
    const pivot = k[first]!;
    let lo = first + 1;
    let hi = last;
    for (;;) {
      while (k[lo]! > pivot) lo++;
      hi--;
      while (pivot > k[hi]!) hi--;
      if (!(lo < hi)) return lo;
      this.swap(lo, hi);
      lo++;
    }
  }

  private finalInsertion(first: number, last: number): void {
    if (last - first > THRESHOLD) {
      this.insertion(first, first + THRESHOLD);
      for (let i = first + THRESHOLD; i < last; i++) this.linearInsert(i);
    } else {
      this.insertion(first, last);
    }
  }

  private insertion(first: number, last: number): void {
    const k = this.key;
    const x = this.idx;
    for (let i = first + 1; i < last; i++) {
      if (k[i]! > k[first]!) {
        // Rotate [first, i] right by one.
        const vk = k[i]!;
        const vi = x[i]!;
        k.copyWithin(first + 1, first, i);
        x.copyWithin(first + 1, first, i);
        k[first] = vk;
        x[first] = vi;
      } else {
        this.linearInsert(i);
      }
    }
  }

  /** Shifts element `i` left past every element its key beats (unguarded: something to its left stops it). */
  private linearInsert(i: number): void {
    const k = this.key;
    const x = this.idx;
    const vk = k[i]!;
    const vi = x[i]!;
    let j = i - 1;
    while (vk > k[j]!) {
      k[j + 1] = k[j]!;
      x[j + 1] = x[j]!;
      j--;
    }
    k[j + 1] = vk;
    x[j + 1] = vi;
  }

  // Heapsort fallback (libstdc++ __partial_sort(first, last, last)): make_heap, then pop_heap repeatedly.
  private heapsort(first: number, last: number): void {
    const len = last - first;
    if (len >= 2) {
      for (let parent = (len - 2) >> 1; ; parent--) {
        this.adjust(first, parent, len, this.key[first + parent]!, this.idx[first + parent]!);
        if (parent === 0) break;
      }
    }
    for (let end = last; end - first > 1; ) {
      end--;
      // pop_heap: the top goes to `end`, the old `end` value sinks from the root.
      const vk = this.key[end]!;
      const vi = this.idx[end]!;
      this.key[end] = this.key[first]!;
      this.idx[end] = this.idx[first]!;
      this.adjust(first, 0, end - first, vk, vi);
    }
  }

  /** libstdc++ __adjust_heap: move the hole down to a leaf along the larger child, then push the value up. */
  private adjust(first: number, hole: number, len: number, vk: number, vi: number): void {
    const k = this.key;
    const x = this.idx;
    const top = hole;
    let child = hole;
    while (child < (len - 1) >> 1) {
      child = 2 * (child + 1);
      // "comp(child, child-1)" with comp = greater: the heap keeps the smallest key on top.
      if (k[first + child]! > k[first + child - 1]!) child--;
      k[first + hole] = k[first + child]!;
      x[first + hole] = x[first + child]!;
      hole = child;
    }
    if ((len & 1) === 0 && child === (len - 2) >> 1) {
      child = 2 * (child + 1);
      k[first + hole] = k[first + child - 1]!;
      x[first + hole] = x[first + child - 1]!;
      hole = child - 1;
    }
    // push_heap
    let parent = (hole - 1) >> 1;
    while (hole > top && k[first + parent]! > vk) {
      k[first + hole] = k[first + parent]!;
      x[first + hole] = x[first + parent]!;
      hole = parent;
      parent = (hole - 1) >> 1;
    }
    k[first + hole] = vk;
    x[first + hole] = vi;
  }
}
