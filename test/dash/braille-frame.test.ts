import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { brailleFrame, fastCanvas } from '../../src/dash/blessed.js';

const require = createRequire(import.meta.url);

/** What a terminal shows for a frame: each visible (non-blank) cell's character and foreground colour, per row. */
function cells(frame: string): string[] {
  return frame.split('\n').map((row) => {
    let fg = '9';
    const out: string[] = [];
    // eslint-disable-next-line no-control-regex
    for (const m of row.matchAll(/\x1b\[(\d+)m|([^\x1b])/g)) {
      if (m[1] !== undefined) {
        const n = Number(m[1]);
        if (n >= 30 && n <= 39) fg = String(n - 30);
      } else out.push(m[2] === ' ' ? ' ' : `${m[2]}/${fg}`);
    }
    return out.join('');
  });
}

test("the dashboard's braille frame shows what drawille's own frame shows, with far fewer escapes", () => {
  // The real canvas contrib draws on, with lines in three colours, a gap, and text written over it (axis labels).
  const Context = require('drawille-canvas-blessed-contrib') as new (
    w: number,
    h: number,
  ) => {
    _canvas: {
      frame(): string;
      width: number;
      content: Uint8Array;
      colors: (string | null)[];
      chars: (string | null)[];
    };
    strokeStyle: string;
    fillStyle: string;
    beginPath(): void;
    moveTo(x: number, y: number): void;
    lineTo(x: number, y: number): void;
    stroke(): void;
    fillText(t: string, x: number, y: number): void;
  };
  const ctx = new Context(120, 48);
  const lines: [string, (x: number) => number][] = [
    ['yellow', (x) => 20 + 15 * Math.sin(x / 9)],
    ['magenta', (x) => 30 - x / 6],
    ['red', () => 12],
  ];
  for (const [color, f] of lines) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    ctx.moveTo(0, f(0));
    for (let x = 2; x < 120; x += 2) if (x < 50 || x > 60) ctx.lineTo(x, f(x));
    ctx.stroke();
  }
  ctx.fillStyle = 'green';
  ctx.fillText('0.86', 0, 40);
  ctx.fillText('L12', 80, 4);
  const theirs = ctx._canvas.frame();
  const ours = brailleFrame(ctx._canvas);
  assert.deepEqual(cells(ours), cells(theirs));
  const escapes = (s: string) => s.split('\x1b').length - 1;
  assert.ok(escapes(ours) * 3 < escapes(theirs), `escapes: ours ${escapes(ours)}, drawille's ${escapes(theirs)}`);

  // The whole-canvas clear every chart does before drawing leaves what drawille's own clear leaves: nothing.
  const blank = new Context(120, 48)._canvas.frame();
  fastCanvas(ctx as never);
  (ctx as unknown as { clearRect(x: number, y: number, w: number, h: number): void }).clearRect(0, 0, 120, 48);
  assert.equal(ctx._canvas.frame(), blank);
  assert.equal(brailleFrame(ctx._canvas), blank);
});
