/**
 * The command line as a function: `runCli(argv)` parses, runs and returns the exit code (0 ok, 1 a gate failed,
 * 2 bad input, 3 internal error), printing errors as one line. src/cli.tsx calls it as the `moescope` bin; the
 * fuzz test (test/fuzz) calls it in-process for hundreds of hostile inputs.
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/index.js';
import { describeError, isUserError } from './core/errors.js';
import { oneLine } from './core/sanitize.js';
import { moescopeVersion } from './core/version.js';
import { leaveLoadingScreen } from './views/loading-screen.js';

function buildProgram(): Command {
  const program = new Command('moescope');
  program
    .description(
      'Profile and debug Mixture-of-Experts routing: live heatmaps of expert load, a per-token routing ' +
        'debugger, balance metrics as each framework defines them, collapse warnings, placement planning and CI ' +
        'gates. With no command: the live demo on the bundled model over the bundled multi-domain prompts.',
    )
    .version(moescopeVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(run `moescope --help` for usage)')
    .exitOverride()
    // The root command (the demo) has its own --ep/--no-color: without positional options commander would hand
    // `run --ep cuda` to the root and run on the CPU.
    .enablePositionalOptions()
    .configureHelp({ sortSubcommands: false, showGlobalOptions: false })
    // src/cli.tsx draws a loading screen only for arguments commander accepts; should one be up all the same,
    // the error is printed on the screen the user gets back, not on the alternate one about to vanish.
    .configureOutput({
      outputError: (text, write) => {
        leaveLoadingScreen();
        write(text);
      },
    });
  registerCommands(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  // The root command has an action (the demo), so commander would call a typo "too many arguments".
  const first = argv[2];
  if (first !== undefined && !first.startsWith('-') && !program.commands.some((c) => c.name() === first)) {
    process.stderr.write(`error: unknown command ${oneLine(`'${first}'`, 80)}\n`);
    process.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    leaveLoadingScreen(); // the actions give it back themselves; this is the net under them
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
        return 0;
      return 2; // commander already printed the error and the usage hint
    }
    if (isUserError(e)) {
      process.stderr.write(`moescope: ${oneLine(e.message)}\n`); // one line, terminal-safe, cut to 400 chars
      return e.exitCode;
    }
    process.stderr.write(`moescope: internal error: ${oneLine(describeError(e))}\n`);
    if (process.env.MOESCOPE_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    else process.stderr.write('moescope: set MOESCOPE_DEBUG=1 to see the stack trace, and please report it.\n');
    return 3;
  }
}
