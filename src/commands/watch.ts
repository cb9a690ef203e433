import type { Command } from 'commander';
import { floatArg, intArg } from './options.js';

interface WatchFlags {
  interval: number;
  samples?: number;
  record?: string;
  ui: boolean;
  color: boolean;
}

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description(
      "scrape an SGLang server's Prometheus /metrics: EPLB load per layer × GPU and balancedness, per interval",
    )
    .argument('<url>', 'the server (its /metrics is read) or the metrics page itself, e.g. http://127.0.0.1:30000')
    .option('--interval <s>', 'seconds between scrapes', floatArg('--interval', 0.05), 5)
    .option('--samples <n>', 'stop after N intervals (default: until q / Ctrl-C)', intArg('--samples', 1))
    .option(
      '--record <trace>',
      'record the per-interval counts per layer × GPU as a count trace (.arrows; docs/trace-format.md)',
    )
    .option('--no-ui', 'print one line per interval and a per-layer table at the end instead of the TUI')
    .option('--no-color', 'draw without colour')
    .addHelpText(
      'after',
      '\nNeeds SGLang started with --enable-metrics and SGLANG_EPLB_HEATMAP_COLLECTION_INTERVAL=N (N > 0);\n' +
        'SGLANG_ENABLE_EPLB_BALANCEDNESS_METRIC=1 adds its balancedness summary. docs/serving.md#prometheus.',
    )
    .action(async (url: string, f: WatchFlags) => {
      const { runWatch } = await import('./watch-action.js');
      await runWatch(url, f);
    });
}

export type { WatchFlags };
