/**
 * Device memory: per GPU used / total from nvidia-smi (sampled at most once a second), the host process's RSS
 * always. A machine without nvidia-smi (or without a working driver) reports `gpus: null` — "no GPU", not zeros.
 * onnxruntime-node exposes no allocator statistics, so `ortBytes` is null; on a GPU its arena shows in nvidia-smi.
 */
import { execFile } from 'node:child_process';
import type { GpuMemory, MemorySample } from '../core/memory.js';

export const NVIDIA_SMI_ARGS = [
  '--query-gpu=index,name,memory.used,memory.total,utilization.gpu',
  '--format=csv,noheader,nounits',
];
const MIB = 1024 * 1024;

/** Parse `nvidia-smi --query-gpu=index,name,memory.used,memory.total,utilization.gpu --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(text: string): GpuMemory[] {
  const gpus: GpuMemory[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 5) throw new Error(`unexpected nvidia-smi line: ${line}`);
    // The name may itself contain commas: index first, the three numbers last.
    const [index, used, total, util] = [f[0]!, f[f.length - 3]!, f[f.length - 2]!, f[f.length - 1]!];
    const num = (s: string) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : null);
    const i = num(index);
    const u = num(used);
    const t = num(total);
    if (i === null || u === null || t === null) throw new Error(`unexpected nvidia-smi line: ${line}`);
    gpus.push({
      index: i,
      name: f.slice(1, f.length - 3).join(', '),
      usedBytes: u * MIB,
      totalBytes: t * MIB,
      utilization: num(util),
    });
  }
  return gpus;
}

export interface MemorySamplerOptions {
  /** nvidia-smi command (default "nvidia-smi" on PATH); null: do not query GPUs. */
  nvidiaSmi?: string | null;
  /** Minimum time between nvidia-smi calls (default 1000 ms); more frequent samples reuse the last reading. */
  minIntervalMs?: number;
  timeoutMs?: number;
}

export class MemorySampler {
  private readonly cmd: string | null;
  private readonly minInterval: number;
  private readonly timeout: number;
  /** Set once nvidia-smi is found missing or failing: the machine has no usable GPU. */
  private noGpu = false;
  private last: { at: number; gpus: GpuMemory[] | null } | null = null;
  private inflight: Promise<GpuMemory[] | null> | null = null;

  constructor(o: MemorySamplerOptions = {}) {
    this.cmd = o.nvidiaSmi === undefined ? 'nvidia-smi' : o.nvidiaSmi;
    this.minInterval = o.minIntervalMs ?? 1000;
    this.timeout = o.timeoutMs ?? 2000;
  }

  async sample(): Promise<MemorySample> {
    const gpus = await this.gpus();
    return {
      tNs: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
      gpus,
      hostRssBytes: process.memoryUsage.rss(),
      ortBytes: null,
    };
  }

  private async gpus(): Promise<GpuMemory[] | null> {
    if (this.cmd === null || this.noGpu) return null;
    const now = performance.now();
    if (this.last && now - this.last.at < this.minInterval) return this.last.gpus;
    if (!this.inflight) {
      this.inflight = this.query().then((g) => {
        this.last = { at: performance.now(), gpus: g };
        this.inflight = null;
        return g;
      });
    }
    return this.inflight;
  }

  private query(): Promise<GpuMemory[] | null> {
    return new Promise((resolvePromise) => {
      execFile(this.cmd!, NVIDIA_SMI_ARGS, { timeout: this.timeout, encoding: 'utf8' }, (err, stdout) => {
        if (err) {
          // Missing binary or no driver: no GPU. A timeout is transient: keep trying.
          if (!(err as NodeJS.ErrnoException & { killed?: boolean }).killed) this.noGpu = true;
          resolvePromise(null);
          return;
        }
        try {
          const g = parseNvidiaSmi(stdout);
          if (g.length === 0) this.noGpu = true;
          resolvePromise(g.length ? g : null);
        } catch {
          this.noGpu = true;
          resolvePromise(null);
        }
      });
    });
  }
}
