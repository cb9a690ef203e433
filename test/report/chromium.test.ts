/**
 * The report as a browser shows it: `moescope report` writes the file, headless Chromium (Debian's `chromium`
 * package) lays it out and paints it. From the DOM Chromium builds we check the heatmap has one laid-out cell
 * per layer and expert bin in a grid; from its screenshot, that each cell is painted in its viridis colour and
 * the planted collapse is the brightest cell. Skipped, saying why, when no Chromium is installed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePng, pixelHex } from './png.js';
import { tempDir, writeTrace } from '../gate/fixtures.js';

const cli = new URL('../../src/cli.js', import.meta.url).pathname;

function findChromium(): string | null {
  const candidates = [process.env.MOESCOPE_CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome'].filter(
    (c): c is string => !!c,
  );
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    if (r.status === 0 && /chrom/i.test(r.stdout)) return c;
  }
  return null;
}

const chromium = findChromium();
const MISSING =
  'chromium not found: install it (`apt-get install -y chromium` on Debian) to run the browser rendering test';
// CI sets MOESCOPE_REQUIRE_CHROMIUM=1 so a missing browser fails the run instead of skipping silently.
const SKIP = chromium || process.env.MOESCOPE_REQUIRE_CHROMIUM === '1' ? false : MISSING;

/** Runs headless Chromium on a file with a throwaway profile and no network services. */
function headless(args: string[]): string {
  const profile = mkdtempSync(join(tmpdir(), 'moescope-chromium-'));
  try {
    const r = spawnSync(
      chromium!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-extensions',
        '--hide-scrollbars',
        '--force-device-scale-factor=1',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
    );
    assert.equal(r.status, 0, `chromium failed: ${r.stderr.slice(-2000)}`);
    return r.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

interface CellBox {
  layer: string;
  bin: string;
  x: number;
  y: number;
  w: number;
  h: number;
  fill: string;
}

const LAYERS = [0, 1, 2, 3];
const EXPERTS = 8;
const t = tempDir();
let report = '';

before(() => {
  if (SKIP) return;
  assert.ok(chromium, `${MISSING} (MOESCOPE_REQUIRE_CHROMIUM=1)`);
  const trace = writeTrace(t.path('collapse.arrows'), {
    tokens: 2000,
    layers: LAYERS,
    experts: EXPERTS,
    tags: ['code', 'prose'],
    collapse: { layer: 2, expert: 5, from: 0.25, share: 0.95 },
  });
  report = t.path('report.html');
  const r = spawnSync(process.execPath, [cli, 'report', trace, '-o', report, '--devices', '2'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
after(() => t.cleanup());

test('Chromium builds the heatmap with one cell per layer and expert bin', { skip: SKIP }, () => {
  const dom = headless(['--dump-dom', `file://${report}`]);
  const svg = /<svg class="heatmap" data-heatmap="load"[\s\S]*?<\/svg>/.exec(dom);
  assert.ok(svg, 'the load heatmap is in the DOM Chromium built');
  const cells = [...svg[0].matchAll(/<rect class="cell"[^>]*data-layer="(\d+)"[^>]*data-bin="(\d+)"/g)].map(
    (m) => `${m[1]}/${m[2]}`,
  );
  assert.equal(cells.length, LAYERS.length * EXPERTS);
  assert.equal(new Set(cells).size, cells.length, 'no cell drawn twice');
  for (const l of LAYERS)
    for (let e = 0; e < EXPERTS; e++) assert.ok(cells.includes(`${l}/${e}`), `cell layer ${l} expert ${e}`);
});

test('every cell is laid out in a grid and painted in its colour; the collapsed expert is the brightest', {
  skip: SKIP,
}, () => {
  // A copy with a probe script measuring the laid-out cells (the report itself allows no script: CSP).
  const probe = t.path('probe.html');
  const html = readFileSync(report, 'utf8')
    .replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, '')
    .replace(
      '</body>',
      `<script>
const cells = [...document.querySelectorAll('svg[data-heatmap="load"] rect.cell')].map((c) => {
  const r = c.getBoundingClientRect();
  return { layer: c.dataset.layer, bin: c.dataset.bin, x: r.x, y: r.y, w: r.width, h: r.height, fill: c.getAttribute('fill') };
});
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(cells); document.body.appendChild(pre);
</script></body>`,
    );
  writeFileSync(probe, html);
  const dom = headless(['--dump-dom', `file://${probe}`]);
  const m = /<pre id="probe">([^<]*)<\/pre>/.exec(dom);
  assert.ok(m, 'probe ran');
  const boxes = JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as CellBox[];
  assert.equal(boxes.length, LAYERS.length * EXPERTS);
  const xs = [...new Set(boxes.map((b) => b.x))].sort((a, b) => a - b);
  const ys = [...new Set(boxes.map((b) => b.y))].sort((a, b) => a - b);
  assert.equal(xs.length, EXPERTS, 'one column per expert');
  assert.equal(ys.length, LAYERS.length, 'one row per layer');
  for (const b of boxes) {
    assert.ok(b.w >= 3 && b.h >= 8, `cell ${b.layer}/${b.bin} has area ${b.w}×${b.h}`);
    assert.equal(xs.indexOf(b.x), Number(b.bin), 'columns in expert order');
    assert.equal(ys.indexOf(b.y), LAYERS.indexOf(Number(b.layer)), 'rows in layer order');
  }

  // The page as painted (the real report, CSP and all): each cell centre shows its fill colour.
  const height = Math.ceil(Math.max(...boxes.map((b) => b.y + b.h))) + 40;
  const shot = t.path('shot.png');
  headless([`--screenshot=${shot}`, `--window-size=1280,${height}`, `file://${report}`]);
  const png = decodePng(readFileSync(shot));
  const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const luminance = (hex: string) => {
    const [r, g, b] = rgb(hex);
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  };
  const painted = new Map<string, string>();
  for (const b of boxes) {
    const got = pixelHex(png, b.x + b.w / 2, b.y + b.h / 2);
    const want = rgb(b.fill);
    const diff = Math.max(...rgb(got).map((v, i) => Math.abs(v - want[i]!)));
    assert.ok(diff <= 8, `cell layer ${b.layer} expert ${b.bin}: painted ${got}, fill ${b.fill}`);
    painted.set(`${b.layer}/${b.bin}`, got);
  }
  const brightest = [...painted.entries()].reduce((a, b) => (luminance(b[1]) > luminance(a[1]) ? b : a));
  assert.equal(brightest[0], '2/5', 'the planted collapse is the brightest cell');
});
