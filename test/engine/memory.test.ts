import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySampler, NVIDIA_SMI_ARGS, parseNvidiaSmi } from '../../src/engine/memory.js';

const MIB = 1024 * 1024;

// Captured from `nvidia-smi --query-gpu=index,name,memory.used,memory.total,utilization.gpu --format=csv,noheader,nounits`
const TWO_H200 = '0, NVIDIA H200, 80213, 143771, 97\n1, NVIDIA H200, 4, 143771, 0\n';
const MIG_NA = '0, NVIDIA A100-SXM4-80GB, 1130, 81920, [N/A]\n';

test('parses nvidia-smi CSV into bytes, per GPU, with utilisation when reported', () => {
  assert.deepEqual(parseNvidiaSmi(TWO_H200), [
    { index: 0, name: 'NVIDIA H200', usedBytes: 80213 * MIB, totalBytes: 143771 * MIB, utilization: 97 },
    { index: 1, name: 'NVIDIA H200', usedBytes: 4 * MIB, totalBytes: 143771 * MIB, utilization: 0 },
  ]);
  assert.equal(parseNvidiaSmi(MIG_NA)[0]!.utilization, null);
  assert.equal(parseNvidiaSmi('3, Tesla V100, PCIe, 16GB, 10, 16384, 5')[0]!.name, 'Tesla V100, PCIe, 16GB');
  assert.deepEqual(parseNvidiaSmi(''), []);
  assert.throws(() => parseNvidiaSmi('NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'));
});

test('sampler: runs the injected command with the query arguments, at most once per interval; RSS always', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-smi-'));
  try {
    const calls = join(dir, 'calls');
    const fake = join(dir, 'nvidia-smi');
    writeFileSync(fake, `#!/bin/sh\necho "$@" >> ${calls}\nprintf '${TWO_H200.replace(/\n/g, '\\n')}'\n`);
    chmodSync(fake, 0o755);
    const s = new MemorySampler({ nvidiaSmi: fake, minIntervalMs: 60_000 });
    const a = await s.sample();
    const b = await s.sample();
    assert.equal(a.gpus!.length, 2);
    assert.equal(a.gpus![0]!.usedBytes, 80213 * MIB);
    assert.deepEqual(b.gpus, a.gpus);
    assert.ok(b.tNs >= a.tNs);
    assert.ok(a.hostRssBytes > 10 * MIB);
    assert.equal(a.ortBytes, null);
    assert.deepEqual(
      readFileSync(calls, 'utf8').trim().split('\n'),
      [NVIDIA_SMI_ARGS.join(' ')],
      'one call within the interval',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no GPU: a missing or failing nvidia-smi gives gpus null (not zeros), and is not retried', async () => {
  const missing = new MemorySampler({ nvidiaSmi: '/nonexistent/nvidia-smi', minIntervalMs: 0 });
  assert.equal((await missing.sample()).gpus, null);
  const dir = mkdtempSync(join(tmpdir(), 'moescope-smi-'));
  try {
    const calls = join(dir, 'calls');
    const failing = join(dir, 'nvidia-smi');
    writeFileSync(
      failing,
      `#!/bin/sh\necho x >> ${calls}\necho "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2\nexit 9\n`,
    );
    chmodSync(failing, 0o755);
    const s = new MemorySampler({ nvidiaSmi: failing, minIntervalMs: 0 });
    assert.equal((await s.sample()).gpus, null);
    assert.equal((await s.sample()).gpus, null);
    assert.equal(readFileSync(calls, 'utf8').trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal((await new MemorySampler({ nvidiaSmi: null }).sample()).gpus, null);
});
