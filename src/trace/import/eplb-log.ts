/**
 * `import log`: the balancedness lines SGLang and vLLM print, as a series trace (src/trace/series.ts).
 *
 * SGLang (eplb/expert_distribution.py, rank 0, with --enable-expert-distribution-metrics or EPLB):
 *   [Expert Balancedness] forward_pass_id=N current_pass_balancedness=0.812 last_10_average_balancedness=0.801
 *   last_100_average_balancedness=0.79 last_1000_average_balancedness=0.78  gpu_physical_count_sum=12345
 * vLLM (distributed/eplb/eplb_state.py, rank 0, with --eplb-config '{"log_balancedness": true}'):
 *   EPLB step: avg_tokens=512.00, max_tokens=1024, balancedness=0.5000
 *   EPLB step: 3 for model m: avg_tokens=…, max_tokens=…, balancedness=…, steps until the next rearrangement: N
 * Lines are found anywhere in a log (logger prefixes and other output around them are skipped); a leading
 * "[YYYY-MM-DD HH:MM:SS" (SGLang's prefix) gives the row's time, read as UTC. vLLM's prefix has no year: its rows
 * have t_ns 0.
 */
import { UserError } from '../../core/errors.js';
import { readLines } from './lines.js';
import { writeSeriesTrace, type SeriesColumn } from '../series.js';

const NUM = '([-+]?(?:\\d+\\.?\\d*(?:[eE][-+]?\\d+)?|nan|inf))';
const SGLANG = new RegExp(
  `\\[Expert Balancedness\\]\\s+forward_pass_id=(\\d+)\\s+current_pass_balancedness=${NUM}\\s+((?:last_\\d+_average_balancedness=\\S+\\s+)*)gpu_physical_count_sum=${NUM}`,
);
const VLLM = new RegExp(
  `EPLB step:\\s*(?:(\\d+)(?: for model .*?)?:\\s*)?avg_tokens=${NUM}, max_tokens=${NUM}, balancedness=${NUM}`,
);
const WINDOW = /last_(\d+)_average_balancedness=(\S+)/g;
const STAMP = /^\[(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?/;

export interface LogImportResult {
  rows: number;
  producer: 'sglang' | 'vllm';
  notes: string[];
}

const num = (s: string) => (/^nan$/i.test(s) ? NaN : /^inf$/i.test(s) ? Infinity : Number(s));

function stampNs(line: string): bigint {
  const m = STAMP.exec(line);
  if (!m) return 0n;
  const ms = Date.parse(`${m[1]}T${m[2]}Z`);
  if (!Number.isFinite(ms)) return 0n;
  const frac = (m[3] ?? '').padEnd(9, '0');
  return BigInt(ms) * 1_000_000n + BigInt(frac);
}

export function importEplbLog(files: string[], output: string): LogImportResult {
  const cols: Partial<Record<SeriesColumn, number[]>> = {};
  const step: number[] = [];
  const tNs: bigint[] = [];
  let producer: 'sglang' | 'vllm' | null = null;
  let skipped = 0;
  const push = (c: SeriesColumn, i: number, v: number) => {
    const a = (cols[c] ??= []);
    while (a.length < i) a.push(NaN);
    a.push(v);
  };
  for (const file of files)
    for (const line of readLines(file)) {
      const s = SGLANG.exec(line.text);
      const v = s ? null : VLLM.exec(line.text);
      if (!s && !v) {
        if (/\[Expert Balancedness\]|EPLB step:/.test(line.text)) skipped++;
        continue;
      }
      const kind = s ? 'sglang' : 'vllm';
      if (producer === null) producer = kind;
      else if (producer !== kind)
        throw new UserError(
          `${file}:${line.no}: a ${kind} line in a ${producer} log; import one server's log at a time`,
        );
      const i = step.length;
      tNs.push(stampNs(line.text));
      if (s) {
        step.push(Number(s[1]));
        push('balancedness', i, num(s[2]!));
        for (const w of s[3]!.matchAll(WINDOW)) {
          const key = `balancedness_last_${w[1]}`;
          if (key === 'balancedness_last_10' || key === 'balancedness_last_100' || key === 'balancedness_last_1000')
            push(key, i, num(w[2]!));
        }
        push('assignments', i, num(s[4]!));
      } else {
        step.push(v![1] !== undefined ? Number(v![1]) : i + 1);
        push('avg_tokens', i, num(v![2]!));
        push('max_tokens', i, num(v![3]!));
        push('balancedness', i, num(v![4]!));
      }
      if (step.length > 50_000_000) throw new UserError(`${file}: more than 50 million balancedness lines`);
    }
  if (producer === null)
    throw new UserError(
      `${files.join(', ')}: no SGLang "[Expert Balancedness]" or vLLM "EPLB step:" lines found${skipped ? ` (${skipped} lines name them but are not in a known shape)` : ''}`,
    );
  const n = step.length;
  const values: Partial<Record<SeriesColumn, Float64Array>> = {};
  for (const [c, a] of Object.entries(cols) as [SeriesColumn, number[]][]) {
    const f = new Float64Array(n).fill(NaN);
    f.set(a);
    values[c] = f;
  }
  writeSeriesTrace(output, {
    inputs: files,
    producer,
    meta: { model: null, routers: [], tokenizer: null, devices: [], source: `import:log:${producer}` },
    length: n,
    step: Float64Array.from(step),
    tNs: BigInt64Array.from(tNs),
    values,
  });
  const notes: string[] = [];
  if (skipped)
    notes.push(`${skipped} lines mention balancedness in a shape not read (e.g. vLLM's per-layer table); skipped`);
  if (producer === 'vllm' && tNs.every((t) => t === 0n))
    notes.push("vLLM's log prefix has no year: the rows carry no time");
  return { rows: n, producer, notes };
}
