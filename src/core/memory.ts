/** Device-memory samples: produced by the engine, recorded by trace, shown by the Devices view. */

export interface GpuMemory {
  index: number;
  name: string;
  usedBytes: number;
  totalBytes: number;
  /** GPU utilisation in percent, when the driver reports it. */
  utilization: number | null;
}

export interface MemorySample {
  /** Capture time, ns since the Unix epoch. */
  tNs: bigint;
  /** One entry per GPU; null when the machine has no GPU (shown as "no GPU", never as zeros). */
  gpus: GpuMemory[] | null;
  /** Resident set size of the moescope process. */
  hostRssBytes: number;
  /** Bytes held by onnxruntime's allocator, when it reports them. */
  ortBytes: number | null;
}
