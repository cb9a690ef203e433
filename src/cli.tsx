#!/usr/bin/env node
/**
 * moescope command line. Each subcommand lives in src/commands/<name>.ts as a thin registration whose action
 * lazy-imports the library code it needs, so `moescope --help` never loads onnxruntime, Arrow or Ink.
 */
import { runCli } from './cli-main.js';

// A reader that closes the pipe early (`moescope stats T --json | head`) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});
// Exit only once stdout has drained: process.exit() would cut piped output at the pipe buffer (64 KiB).
runCli(process.argv).then((code) => process.stdout.write('', () => process.exit(code)));
