/**
 * The loading screen each drawing command shows first, and which invocations are known to draw one from their
 * arguments alone. src/cli.tsx draws it before the command line (commander and the command table, ~200 KB
 * bundled) is even loaded, so the first frame follows Node's own start; the command's action then draws the same
 * text, which does nothing (drawLoadingScreen ignores a repeat).
 *
 * The rule is deliberately narrow: only arguments that commander will certainly accept and that certainly reach a
 * TUI (no --help, --version, --no-ui, unknown or repeated flags, values that could be rejected). Anything else
 * returns null and the command runs exactly as without this module. Errors found later (a missing model or trace)
 * give the screen back before they are printed, as they did before (the actions' `finally`).
 *
 * Imports nothing heavy: it is loaded before everything else.
 */
import { basename, dirname } from 'node:path';
import { sanitizeLine } from '../core/sanitize.js';

export interface LoadingText {
  title: string;
  what: string;
}

/** Bare `moescope`: the live demo. */
export function demoLoading(ep: string): LoadingText {
  return {
    title: 'live demo · bundled tiny-moe',
    what: `loading the bundled tiny-moe model (onnxruntime, ${ep}, in a worker thread)…`,
  };
}

/** `moescope replay TRACE` (`--follow`). The path is the user's: made safe for the terminal. */
export function replayLoading(trace: string, follow: boolean): LoadingText {
  return { title: `${follow ? 'follow' : 'replay'} ${sanitizeLine(trace)}`, what: 'opening the trace…' };
}

/** The name `run` shows for a model: its folder when the file is the usual model.onnx. */
export function modelLabel(model: string): string {
  return basename(model) === 'model.onnx' ? basename(dirname(model)) : basename(model);
}

/** `moescope run MODEL` with the TUI. */
export function runLoading(model: string, ep: string): LoadingText {
  return {
    title: `run · ${sanitizeLine(modelLabel(model))}`,
    what: `loading ${sanitizeLine(model)} (onnxruntime, ${ep}, in a worker thread)…`,
  };
}

type Check = (v: string) => boolean;

const anyValue: Check = () => true;
/** Integers as options.ts intArg takes them, narrowed: plain digits, at least `min`, no larger than 10⁹. */
const int =
  (min: number): Check =>
  (v) =>
    /^\d{1,9}$/.test(v) && Number(v) >= min;
const oneOf =
  (...choices: string[]): Check =>
  (v) =>
    choices.includes(v);
const EP = oneOf('cpu', 'cuda', 'webgpu');
const COLORMAP = oneOf('viridis', 'cividis');

/** A command's long options: boolean flags, and options that take a value (with what is certainly accepted). */
interface Spec {
  flags: readonly string[];
  values: Readonly<Record<string, Check>>;
}

/** src/commands/demo.ts's options. */
const DEMO: Spec = {
  flags: ['--no-color'],
  values: { '--ep': EP, '--max-tokens': int(0), '--devices': int(1), '--plan': anyValue, '--colormap': COLORMAP },
};

/** src/commands/replay.ts's, but --no-ui. --speed: 0.25 to 64, written plainly. */
const REPLAY: Spec = {
  flags: ['--follow', '--no-color'],
  values: {
    '--speed': (v) => /^\d{1,2}(\.\d{1,6})?$/.test(v) && Number(v) >= 0.25 && Number(v) <= 64,
    '--devices': int(1),
    '--plan': anyValue,
    '--window': int(1),
    '--colormap': COLORMAP,
  },
};

/** src/commands/run.ts's options for a local model, but --no-ui, --server and its options, and the flags that
 * conflict with each other (--prompt / --prompts / --input-ids, --greedy / --temperature). */
const RUN: Spec = {
  flags: ['--logits', '--no-color'],
  values: {
    '--prompt': anyValue,
    '--prompts': anyValue,
    '--max-tokens': int(0),
    '--seed': int(0),
    '--ep': EP,
    '--tokenizer': anyValue,
    '--record': anyValue,
    '--devices': int(1),
  },
};

/** Positionals and options of `args` when every option is in `spec`, given once, with an accepted value. */
function parse(args: readonly string[], spec: Spec): { positionals: string[]; options: Map<string, string> } | null {
  const positionals: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) {
      if (a === '') return null;
      positionals.push(a);
      continue;
    }
    // Short options (-h, -V), `--`, `-`: not this rule's business.
    if (!a.startsWith('--') || a === '--') return null;
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    if (options.has(name)) return null;
    if (spec.flags.includes(name)) {
      if (eq >= 0) return null;
      options.set(name, '');
      continue;
    }
    const check = Object.hasOwn(spec.values, name) ? spec.values[name] : undefined;
    if (check === undefined) return null;
    const value = eq >= 0 ? a.slice(eq + 1) : args[++i];
    // A value that looks like an option could be read either way: leave it to commander.
    if (value === undefined || value === '' || value.startsWith('-') || !check(value)) return null;
    options.set(name, value);
  }
  return { positionals, options };
}

/**
 * The loading screen of `moescope ARGS` (process.argv without node and the script) when the arguments alone say
 * it draws a TUI — the caller checks that a terminal is there — else null.
 */
export function firstFrame(args: readonly string[]): LoadingText | null {
  const command = args[0];
  if (command === undefined || command.startsWith('-')) {
    const demo = parse(args, DEMO);
    return demo && demo.positionals.length === 0 ? demoLoading(demo.options.get('--ep') ?? 'cpu') : null;
  }
  if (command === 'replay') {
    const replay = parse(args.slice(1), REPLAY);
    if (replay?.positionals.length !== 1) return null;
    return replayLoading(replay.positionals[0]!, replay.options.has('--follow'));
  }
  if (command === 'run') {
    const run = parse(args.slice(1), RUN);
    if (run?.positionals.length !== 1 || (run.options.has('--prompt') && run.options.has('--prompts'))) return null;
    return runLoading(run.positionals[0]!, run.options.get('--ep') ?? 'cpu');
  }
  return null;
}
