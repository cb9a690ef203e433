/**
 * `moescope dash` in a real terminal (node-pty + @xterm/headless, CI=false for the child): on a recorded trace and
 * on a live run of the bundled model, the screen shows every chart's title, the MaxVio limit as a chart series, a
 * VRAM gauge whose percentage is the recorded used / total, host RSS, and the collapse warnings in the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DEMO_TRACE, tempDir } from '../store/helpers.js';
import { CLI, PtySession, colourEscapes } from './harness.js';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const MODEL = join(process.cwd(), 'fixtures', 'models', 'tiny-moe');

const TITLES = [
  /MaxVio over time · worst L\d/,
  /CV over time · worst L\d/,
  /load ÷ uniform · 4 layers × 8 experts/,
  /tokens per/,
  /rate · memory/,
  /warnings · \d+/,
];

/** The demo trace with a GPU's memory recorded beside it (the GPU name carries escape sequences and tags). */
async function traceWithGpu(dir: string): Promise<{ path: string; used: number; total: number }> {
  const { openTrace, TraceWriter } = await import('../../src/trace/index.js');
  const src = openTrace(DEMO_TRACE);
  const path = join(dir, 'gpu.arrows');
  const w = TraceWriter.create(path, { schema: src.schema, meta: src.meta, batchTokens: 64 });
  const used = 40 * GiB;
  const total = 141 * GiB;
  const n = src.tokenCount;
  for (let a = 0; a < n; a += 100) {
    const b = src.readRange(a, Math.min(n, a + 100));
    w.write(b);
    w.writeMemory({
      tNs: b.tNs[b.length - 1]!,
      gpus: [
        {
          index: 0,
          name: 'H200\x1b[31m\x1b]0;pwned\x07{red-fg}x',
          usedBytes: used - (a === 0 ? GiB : 0),
          totalBytes: total,
          utilization: 50,
        },
      ],
      hostRssBytes: 300 * 1024 ** 2,
      ortBytes: null,
    });
  }
  w.close();
  src.close();
  return { path, used, total };
}

test('dash on a trace: every chart, the limit line, a VRAM gauge equal to the recorded share, warnings; keys, resize, q', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const { path, used, total } = await traceWithGpu(dir);
  const s = PtySession.start(['dash', path, '--devices', '4'], { cols: 140, rows: 44 });
  t.after(() => s.kill());
  let screen = await s.waitFor(
    (x) => TITLES.every((r) => r.test(x)) && /■ end/.test(x) && /token [\d,]+ · layer \d/.test(x) && /\? keys/.test(x),
  );
  assert.equal(s.bufferType(), 'alternate');
  assert.match(screen, /limit 1\.5/, 'the MaxVio limit is a series of the chart');
  assert.match(screen, /tokens per device, % · balancedness \d\.\d\d/);
  assert.match(screen, /d0\s+d1\s+d2\s+d3/);
  // The gauge: the newest sample's used / total, as the store computes it (40 of 141 GiB = 28 %).
  const pct = `${Math.round((100 * used) / total)}%`;
  assert.match(screen, /GPU 0 40\.0 GiB \/ 141\.0 GiB · H200\\x1b\[3/, 'control characters shown as visible escapes');
  assert.ok(screen.includes(pct), `gauge shows ${pct}`);
  assert.ok(!s.raw.includes('\x1b]0;pwned'), 'no escape sequence from the data reaches the terminal');
  assert.match(screen, /host RSS 300\.0 MiB/);
  assert.match(screen, /token 511 · layer \d+( expert \d+)?: /, 'a collapse warning with its token');
  assert.match(screen, /moescope dash replay .*gpu\.arrows │ ■ end │ 719 tokens/);

  s.press('?');
  screen = await s.waitFor(/Keys · source: replay/);
  assert.match(screen, /space\s+freeze the view/);
  s.press('?');
  await s.waitFor((x) => !x.includes('Keys · source'));
  s.press('m');
  await s.waitFor(/balancedness \(SGLang\) over time · worst L\d/);
  s.press('m');
  await s.waitFor(/CV over time/);

  s.resize(70, 20);
  await s.waitFor(/needs a terminal of at least 80×24; this one is 70×20/);
  s.resize(100, 30);
  screen = await s.waitFor((x) => TITLES.every((r) => r.test(x)) && x.split('\n').length === 30);
  assert.ok(!/needs a terminal/.test(screen));

  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
  await s.waitFor(() => s.bufferType() === 'normal');
});

test('dash on a live run of the bundled model: charts fill in, warnings arrive, space freezes, q stops the engine', async (t) => {
  const s = PtySession.start(['dash', MODEL, '--max-tokens', '24', '--window', '128'], { cols: 120, rows: 40 });
  t.after(() => s.kill());
  // Memory is sampled once a second; the warnings need a full window (128 tokens).
  let screen = await s.waitFor(
    (x) =>
      TITLES.every((r) => r.test(x)) && /● live/.test(x) && /token [\d,]+ · layer \d/.test(x) && /host RSS \d/.test(x),
    60_000,
  );
  assert.match(screen, /limit 1\.5/);
  assert.match(screen, /moescope dash live run · tiny-moe/);
  assert.match(screen, /host RSS \d+\.\d MiB/);
  assert.match(screen, /tok\/s \d/);
  assert.match(screen, /no GPU/);
  s.press(' ');
  await s.waitFor(/❚❚ frozen/);
  // The frame at the moment of freezing may still be published; once tokens are buffered the view stands still.
  screen = await s.waitFor(/\+[\d,]+ buffered/);
  const count = /│ ([\d,]+) tokens/.exec(screen)![1];
  const buffered = (x: string) => Number((/\+([\d,]+) buffered/.exec(x)?.[1] ?? '0').replace(/,/g, ''));
  const before = buffered(screen);
  screen = await s.waitFor((x) => buffered(x) > before);
  assert.ok(screen.includes(`│ ${count} tokens`), 'the view stays frozen while tokens arrive');
  s.press(' ');
  await s.waitFor(/● live/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('NO_COLOR=1: no colour escape anywhere; the heat grid uses the glyph ramp', async (t) => {
  const s = PtySession.start(['dash', DEMO_TRACE], { cols: 100, rows: 30, env: { NO_COLOR: '1' } });
  t.after(() => s.kill());
  const screen = await s.waitFor((x) => TITLES.every((r) => r.test(x)) && /■ end/.test(x));
  assert.match(screen, /L2 [ ░▒▓█]+/);
  assert.match(screen, /░|▒|▓/, 'the ramp tells loads apart without colour');
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
  assert.deepEqual(colourEscapes(s.raw), []);
});

test('dash without a terminal, or on a missing source: one line, exit 2', async () => {
  await assert.rejects(run(process.execPath, [CLI, 'dash', DEMO_TRACE]), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 2);
    assert.match(e.stderr, /^moescope: dash needs a terminal/);
    return true;
  });
  const s = PtySession.start(['dash', '/nonexistent/run.arrows']);
  const exit = await s.exited;
  assert.equal(exit.exitCode, 2);
  assert.match(s.raw, /moescope: \/nonexistent\/run\.arrows: no such file or folder/);
});

test('dash --listen: two producer ranks stream in; tokens per rank, charts and warnings; q stops the listener', async (t) => {
  const { produce } = await import('../listen/helpers.js');
  const s = PtySession.start(['dash', '--listen', '0', '--window', '128'], { cols: 120, rows: 40 });
  t.after(() => s.kill());
  await s.waitFor(/listening on tcp:\/\/127\.0\.0\.1:\d+/);
  const address = /listening on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(s.screen())![1]!;
  const producers = [0, 1].map((rank) =>
    produce({ connect: address, rank, world: 2, trace: DEMO_TRACE, holdMs: 20_000 }),
  );
  t.after(() => producers.forEach((p) => p.child.kill()));
  const screen = await s.waitFor(
    (x) =>
      TITLES.every((r) => r.test(x)) &&
      /tokens per rank/.test(x) &&
      /r0\s+r1/.test(x) &&
      /token [\d,]+ · layer \d/.test(x) &&
      // the status line too: a frame arrives in several writes, so wait for all of it rather than its first rows
      /moescope dash live listen · 127\.0\.0\.1:\d+/.test(x) &&
      /1,438 tokens/.test(x),
    30_000,
  );
  assert.match(screen, /moescope dash live listen · 127\.0\.0\.1:\d+/);
  assert.match(screen, /1,438 tokens/, 'both ranks, 719 tokens each');
  assert.match(screen, /limit 1\.5/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('dash --watch: a loopback SGLang /metrics — balance charts, layer × GPU grid, GPU shares and balancedness as the page generator computed them', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { SERVING, serve } = await import('../serving/fake-servers.js');
  const expected = JSON.parse(readFileSync(join(SERVING, 'metrics', 'expected.json'), 'utf8')) as {
    intervals: { counts: number[][]; countsBalancedness: number }[];
  };
  const pages = Array.from({ length: 5 }, (_, i) => readFileSync(join(SERVING, 'metrics', `page-${i}.txt`), 'utf8'));
  let next = 0;
  const srv = await serve({
    'GET /metrics': (_q, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(pages[Math.min(next++, pages.length - 1)]);
    },
  });
  t.after(() => srv.close());
  // One interval: the whole watch is interval 1, whose balancedness and GPU shares the page generator recorded.
  const s = PtySession.start(['dash', '--watch', srv.url, '--interval', '0.2', '--samples', '1'], {
    cols: 140,
    rows: 44,
  });
  t.after(() => s.kill());
  const want = expected.intervals[0]!;
  const screen = await s.waitFor(
    (x) =>
      /■ end/.test(x) &&
      /load ÷ uniform · 3 layers × 4 GPUs · all 1 interval /.test(x) &&
      /assignments per GPU, % · balancedness/.test(x) &&
      /\? keys/.test(x),
    30_000,
  );
  assert.match(screen, /MaxVio over time · worst L\d/);
  assert.match(screen, /CV over time · worst L\d/);
  assert.match(screen, /limit 1\.5/);
  assert.match(screen, /moescope dash live watch http:\/\/127\.0\.0\.1:\d+\/metrics/);
  assert.match(screen, /│ 1 interval │/);
  assert.match(
    screen,
    new RegExp(`balancedness ${want.countsBalancedness.toFixed(2)}`),
    'SGLang balancedness of the interval, as the page generator computed it',
  );
  // Each GPU's share of all assignments (over the layers), from the generator's counts.
  const perGpu = [0, 1, 2, 3].map((g) => want.counts.reduce((a, row) => a + row[g]!, 0));
  const all = perGpu.reduce((a, b) => a + b, 0);
  assert.match(screen, new RegExp(perGpu.map((c) => String(Math.round((100 * c) / all))).join('\\s+')));
  assert.match(screen, /gpu0\s+gpu1\s+gpu2\s+gpu3/);
  assert.match(screen, /warnings · none on load counts \(no collapse detector\)/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});
