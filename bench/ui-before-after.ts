/**
 * The TUI frame bench before and after a change, in one run: `bench/ui.js` of an earlier build and of this one,
 * alternating round by round on the same machine at the same time, so a busy machine slows both alike.
 *
 *   node dist/bench/ui-before-after.js [--before-commit REV | --before DIR] [--rounds 3] [--frames 20] [--size 300x70]
 *
 * --before-commit (default 7aeb447, main before the TUI moved to Ink's own renderer): `git archive` of that commit,
 * built with this checkout's node_modules into a temporary folder. --before: a folder already built that way.
 * Each round runs both builds' `bench/ui.js` once (order alternating) and reads their median data-frame, cursor-move
 * and naive-Ink times; the summary is the median over rounds. The goal (≤ 33 ms a frame at 300×70) applies to both.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { BENCH_DIR, failure, interleave, loadLine, machineLine, median, numArg, runChild, strArg } from './common.js';

const REPO = resolve(BENCH_DIR, '..', '..');

interface Row {
  naive: number;
  data: number;
  cursor: number;
  bytes: number;
}

function parse(out: string): Row {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`bench/ui.js printed no ${re}: ${out.slice(-400)}`);
    return Number(m[1]);
  };
  return {
    naive: num(/naive Ink heatmap\s+([\d.]+)/),
    data: num(/moescope, data frame\s+([\d.]+)/),
    cursor: num(/moescope, cursor move\s+([\d.]+)/),
    bytes: num(/\((\d+) bytes\/frame\)/),
  };
}

function buildBefore(rev: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-before-'));
  execFileSync('sh', ['-c', `git -C "${REPO}" archive ${rev} | tar -x -C "${dir}"`]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(
    process.execPath,
    [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')],
    { stdio: 'inherit' },
  );
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function main(): void {
  const argv = process.argv.slice(2);
  const rounds = numArg(argv, '--rounds', 3);
  const frames = numArg(argv, '--frames', 20);
  const size = strArg(argv, '--size') ?? '300x70';
  const given = strArg(argv, '--before');
  const built = given ? null : buildBefore(strArg(argv, '--before-commit') ?? '7aeb447');
  const beforeDir = given ?? built!.dir;
  try {
    const scripts = [join(beforeDir, 'dist', 'bench', 'ui.js'), join(BENCH_DIR, 'ui.js')];
    for (const s of scripts) if (!existsSync(s)) throw new Error(`${s} not built`);
    const names = [
      'before (7aeb447: debug-mode Ink, markers, ScreenWriter)',
      'after (Ink standard renderer + heatmap layer)',
    ];
    console.log(
      `${machineLine()}\n${loadLine()}\nTUI frame at ${size}, 58 × 256 top-8, ${rounds} rounds × ${frames} frames, builds alternating`,
    );
    const rows = interleave(
      names,
      rounds,
      (v) => {
        const r = runChild(
          process.execPath,
          [scripts[v]!, '--frames', String(frames), '--naive-frames', '3', '--size', size],
          {
            env: { ...process.env, CI: 'false' },
            timeout: 600_000,
          },
        );
        if (r.status !== 0) throw new Error(failure(scripts[v]!, r));
        return parse(r.stdout);
      },
      false,
    );
    console.log(
      '\nbuild                                                        data ms  cursor ms  naive ms  data ÷ naive  bytes/frame',
    );
    rows.forEach((rs, v) => {
      const d = median(rs.map((r) => r.data));
      const c = median(rs.map((r) => r.cursor));
      const n = median(rs.map((r) => r.naive));
      const b = median(rs.map((r) => r.bytes));
      console.log(
        `${names[v]!.padEnd(60)} ${d.toFixed(1).padStart(7)} ${c.toFixed(1).padStart(10)} ${n.toFixed(1).padStart(9)} ${(d / n).toFixed(3).padStart(13)} ${String(Math.round(b)).padStart(12)}   goal ≤ 33 ms: ${d <= 33 && c <= 33 ? 'met' : 'NOT met'}`,
      );
      console.log(
        `  rounds: data ${rs.map((r) => r.data.toFixed(1)).join(', ')}; cursor ${rs.map((r) => r.cursor.toFixed(1)).join(', ')}`,
      );
    });
  } finally {
    built?.cleanup();
  }
}

main();
