import type { Command } from 'commander';
import { floatArg, intArg } from './options.js';

interface ListenFlags {
  host: string;
  port: number;
  unix?: string;
  token?: string;
  record?: string;
  ui: boolean;
  exitWhenIdle?: number;
  interval: number;
  devices: number;
  color: boolean;
}

export function registerListen(program: Command): void {
  program
    .command('listen')
    .description('receive routing live from PyTorch ranks (moescope_probe) and show / record them merged')
    .option('--host <addr>', 'address to listen on (anything but loopback needs --token)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0: any free port, printed)', intArg('--port', 0, 65535), 7878)
    .option('--unix <path>', 'listen on a unix socket instead of TCP (created mode 0600)')
    .option('--token <t>', 'shared secret every producer must send (default: $MOESCOPE_TOKEN)')
    .option('--record <trace>', 'record every rank into ONE merged trace (.arrows), rows tagged with their rank')
    .option('--no-ui', 'log lines and a summary instead of the TUI (also without a terminal)')
    .option(
      '--exit-when-idle <s>',
      'exit S seconds after the last producer disconnected',
      floatArg('--exit-when-idle', 0),
    )
    .option('--interval <s>', 'seconds between summary lines without the TUI', floatArg('--interval', 0.1), 10)
    .option(
      '--devices <d>',
      'assume experts are placed contiguously over D devices (Devices view)',
      intArg('--devices', 1),
      1,
    )
    .option('--no-color', 'draw without colour (also when NO_COLOR is set)')
    .addHelpText(
      'after',
      '\nProducers: moescope_probe.attach(model, "tcp://HOST:PORT") in each rank (pip install ./python).\n' +
        'Wire protocol, merging of ranks and what is refused: docs/live.md.',
    )
    .action(async (f: ListenFlags) => {
      const { runListen } = await import('./listen-action.js');
      const token = f.token ?? (process.env.MOESCOPE_TOKEN || null);
      await runListen({
        host: f.host,
        port: f.port,
        unix: f.unix ?? null,
        token,
        record: f.record ?? null,
        ui: f.ui,
        exitWhenIdle: f.exitWhenIdle ?? null,
        interval: f.interval,
        devices: f.devices,
        color: f.color,
      });
    });
}
