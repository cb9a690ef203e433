#!/usr/bin/env node
/**
 * moescope command line. Each subcommand lives in src/commands/<name>.ts as a thin registration whose action
 * lazy-imports the library code it needs, so `moescope --help` never loads onnxruntime, Arrow or Ink.
 *
 * This file loads almost nothing itself: when the arguments alone say a TUI will be drawn (the live demo,
 * `replay TRACE`, `run MODEL`: src/commands/first-frame.ts) and a person is at a terminal, the loading screen goes
 * up first, and only then is the command line (commander and the command table, cli-main.ts) imported — so the
 * first frame follows Node's own start. Every other invocation runs exactly as if this step were not there.
 */
import { firstFrame } from './commands/first-frame.js';
import { drawLoadingScreen, onTerminal } from './views/loading-screen.js';

// The arguments first: only an invocation that draws anyway touches process.stdin (onTerminal) this early.
const text = firstFrame(process.argv.slice(2));
if (text && onTerminal()) drawLoadingScreen(text.title, text.what);

// A reader that closes the pipe early (`moescope stats T --json | head`) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});
const { runCli } = await import('./cli-main.js');
// Exit only once stdout has drained: process.exit() would cut piped output at the pipe buffer (64 KiB).
runCli(process.argv).then((code) => process.stdout.write('', () => process.exit(code)));
