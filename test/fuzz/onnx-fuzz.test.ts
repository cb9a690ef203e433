/**
 * Fuzz: seeded mutants of the bundled tiny model's ONNX bytes (fixtures/models/tiny-moe) through `inspect` and
 * `run --no-ui`, each in a process of its own (a native crash in onnxruntime would show as a signal, not take
 * the test down). Every case must end with exit 0, or exit 2 and one `moescope: …` line, no stack, in bounded
 * time. Mutations land mostly in the graph's structure (nodes, inputs, outputs, opsets), not in the weights'
 * raw bytes, where they would only change numbers. A failing case keeps its mutant: rerun with FUZZ_ONLY=onnx:N.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_MODEL } from '../../src/core/paths.js';
import { decodeModel, encodeModel, type OnnxModel } from '../../src/engine/onnx-model.js';
import { Rng } from '../../src/trace/rng.js';
import { mutateBinary } from './mutate.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const CASES = Number(process.env.FUZZ_ONNX_CASES ?? 24);
/** Per case; generous because CI machines are shared (a case takes about 0.5 s on an idle core). */
const CASE_MS = 30_000;

/** Byte ranges of the initializers' raw data in the model file (found by content: the file is what it is). */
function weightRanges(bytes: Buffer): [number, number][] {
  const m = decodeModel(bytes, 'seed');
  const out: [number, number][] = [];
  for (const t of m.graph?.initializer ?? []) {
    const raw = t.raw_data;
    if (!raw || raw.length < 64) continue;
    const at = bytes.indexOf(Buffer.from(raw.subarray(0, 64)));
    if (at >= 0) out.push([at, at + raw.length]);
  }
  return out;
}

/** The seed with its weight bytes cut out, mutated, and put back: mutations land in the structure. */
function mutateStructure(seed: Buffer, weights: [number, number][], rng: Rng): Uint8Array {
  const sorted = [...weights].sort((a, b) => a[0] - b[0]);
  // Replace each weight run by a 16-byte placeholder that the mutator treats like any other bytes.
  const parts: Buffer[] = [];
  const runs: Buffer[] = [];
  let at = 0;
  for (const [s, e] of sorted) {
    if (s < at) continue;
    parts.push(seed.subarray(at, s));
    runs.push(seed.subarray(s, e));
    at = e;
  }
  parts.push(seed.subarray(at));
  const MARK = Buffer.from('\u0000moescope-weights');
  const skeleton = Buffer.concat(parts.flatMap((p, i) => (i < runs.length ? [p, MARK] : [p])));
  const mutated = Buffer.from(mutateBinary(skeleton, rng));
  // Put the weights back where their markers survived (a marker the mutation broke leaves its weights out).
  const out: Buffer[] = [];
  let from = 0;
  for (const run of runs) {
    const m = mutated.indexOf(MARK, from);
    if (m < 0) break;
    out.push(mutated.subarray(from, m), run);
    from = m + MARK.length;
  }
  out.push(mutated.subarray(from));
  return Buffer.concat(out);
}

const INTS = [0, -1, 1, 2, 3, 8, 9, 0x7fffffff, -0x80000000, 1e9];
const OPS = ['TopK', 'Softmax', 'Sigmoid', 'Gather', 'MatMul', 'Reshape', 'NoSuchOp', ''];

/**
 * A valid protobuf with a wrong graph: ops, wiring, attributes, shapes, types and versions changed on the decoded
 * model (what byte mutations rarely reach: they mostly break the wire format, which the decoder refuses).
 */
function mutateGraph(seed: OnnxModel, rng: Rng): Uint8Array {
  const m = structuredClone(seed);
  const g = m.graph!;
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const names = g.node.flatMap((n) => [...n.input, ...n.output]);
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const n = pick(g.node);
    switch (rng.int(10)) {
      case 0:
        n.op_type = pick(OPS);
        break;
      case 1:
        if (n.input.length) n.input[rng.int(n.input.length)] = pick([...names, '', 'missing_tensor']);
        break;
      case 2:
        if (n.output.length) n.output[rng.int(n.output.length)] = pick(names);
        break;
      case 3: {
        const a = n.attribute.length ? pick(n.attribute) : null;
        if (a) {
          a.i = pick(INTS);
          if (a.ints.length) a.ints[rng.int(a.ints.length)] = pick(INTS);
          a.type = pick([a.type ?? 0, 0, 2, 7, 99]);
        }
        break;
      }
      case 4:
        g.node.splice(rng.int(g.node.length), 1);
        break;
      case 5:
        g.node.splice(rng.int(g.node.length), 0, structuredClone(n));
        break;
      case 6: {
        const t = pick(g.initializer);
        t.dims = rng.int(2) ? [pick(INTS)] : t.dims.map(() => pick(INTS));
        if (rng.int(3) === 0) t.data_type = pick([0, 1, 7, 10, 16, 99]);
        break;
      }
      case 7: {
        const io = rng.int(2) ? g.input : g.output;
        if (io.length) {
          if (rng.int(2)) io.splice(rng.int(io.length), 1);
          else io[rng.int(io.length)]!.name = pick(names);
        }
        break;
      }
      case 8:
        if (m.opset_import.length) m.opset_import[0]!.version = pick([0, 1, 7, 99999]);
        else m.ir_version = pick([1, 3, 1000]);
        break;
      default: {
        const vi = pick([...g.input, ...g.output]);
        const dims = vi.type?.tensor_type?.shape?.dim;
        if (dims?.length) dims[rng.int(dims.length)] = rng.int(2) ? { dim_value: pick(INTS) } : { dim_param: 'x' };
        if (vi.type?.tensor_type && rng.int(3) === 0) vi.type.tensor_type.elem_type = pick([0, 1, 7, 10, 99]);
      }
    }
  }
  return encodeModel(m);
}

function runCli(
  argv: string[],
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), CASE_MS);
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

test('fuzz: mutated ONNX models through inspect and run --no-ui end in exit 0, or one line and exit 2', {
  timeout: 600_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-fuzz-onnx-'));
  const seed = readFileSync(BUNDLED_MODEL);
  const weights = weightRanges(seed);
  const decoded = decodeModel(seed, 'seed');
  assert.ok(weights.length > 0, 'the seed model has initializers with raw data');
  const commands = [
    (m: string) => ['inspect', m],
    (m: string) => ['run', m, '--no-ui', '--prompt', 'hello', '--max-tokens', '2'],
  ];
  // The unmutated seed runs cleanly through every command: a fuzz row whose seed fails tests nothing.
  for (const cmd of commands) {
    const r = await runCli(cmd(BUNDLED_MODEL));
    assert.equal(r.code, 0, `seed: ${cmd(BUNDLED_MODEL).join(' ')}: ${r.stderr}`);
  }
  const only = process.env.FUZZ_ONLY;
  const failures: string[] = [];
  const codes: Record<string, number> = {};
  const errors = new Set<string>();
  const one = async (i: number): Promise<void> => {
    if (only && only !== `onnx:${i}`) return;
    const rng = new Rng(i * 7919 + 4242);
    // Each mutant sits in a folder of its own with the tokenizer, as a model would.
    const caseDir = join(dir, `case-${i}`);
    const model = join(caseDir, 'model.onnx');
    rmSync(caseDir, { recursive: true, force: true });
    mkdirSync(caseDir);
    copyFileSync(join(BUNDLED_MODEL, '..', 'tokenizer.json'), join(caseDir, 'tokenizer.json'));
    // Cases 0, 1 of every 4: the graph changed and re-encoded; 2, 3: the bytes of its structure (both commands get both).
    writeFileSync(model, i % 4 < 2 ? mutateGraph(decoded, rng) : mutateStructure(seed, weights, rng));
    const argv = commands[i % commands.length]!(model);
    const r = await runCli(argv);
    codes[String(r.code ?? r.signal)] = (codes[String(r.code ?? r.signal)] ?? 0) + 1;
    const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('moescope: note: '));
    let why: string | null = null;
    if (r.signal) why = r.ms >= CASE_MS ? `no end within ${CASE_MS} ms` : `killed by ${r.signal}`;
    else if (r.code !== 0 && r.code !== 2) why = `exit ${r.code}`;
    else if (/\n\s+at |internal error|uncaught/i.test(r.stderr)) why = 'a stack or internal error';
    else if (r.code === 2 && (lines.length !== 1 || !lines[0]!.startsWith('moescope: ') || lines[0]!.length > 420))
      why = `exit 2 with ${lines.length} error lines`;
    else if (r.code === 0 && lines.length > 0) why = 'exit 0 with an error line';
    if (r.code === 2) errors.add(lines[0]!.replace(/\/\S+/g, 'PATH').slice(0, 100));
    if (why) failures.push(`onnx:${i} moescope ${argv.join(' ')}\n    ${why}: ${r.stderr.slice(0, 400)}`);
    else rmSync(caseDir, { recursive: true, force: true });
  };
  // Two at a time: the cases are independent processes.
  for (let i = 0; i < CASES; i += 2) await Promise.all([one(i), i + 1 < CASES ? one(i + 1) : Promise.resolve()]);
  t.diagnostic(`exit codes: ${JSON.stringify(codes)}; errors: ${[...errors].join(' | ')}`);
  if (failures.length === 0) rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(
    failures,
    [],
    `${failures.length} ONNX fuzz cases failed (mutants kept in ${dir}):\n${failures.join('\n')}`,
  );
});
