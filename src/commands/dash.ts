import type { Command } from 'commander';
import { choiceArg, floatArg, intArg } from './options.js';

interface DashFlags {
  follow?: boolean;
  listen?: number;
  watch?: string;
  interval: number;
  samples?: number;
  host: string;
  token?: string;
  devices: number;
  plan?: string;
  window: number;
  maxMaxvio: number;
  maxCv?: number;
  minBalancedness?: number;
  prompts?: string;
  maxTokens: number;
  ep: 'cpu' | 'cuda' | 'webgpu';
  deviceId: number;
  logits?: boolean;
  colormap: 'viridis' | 'cividis';
  color: boolean;
}

/** `moescope dash SOURCE`: the long-run dashboard (src/dash) over a model (generating live) or a trace. */
export function registerDash(program: Command): void {
  program
    .command('dash')
    .description('long-run dashboard: balance over time per layer, load grid, tokens per device, VRAM, rate, warnings')
    .argument('[source]', 'an ONNX MoE model (model.onnx, or its folder) to run live, or an Arrow trace (.arrows)')
    .option('--follow', 'trace: keep reading as it grows')
    .option(
      '--listen <port>',
      'instead of SOURCE: receive PyTorch ranks (moescope_probe) on this TCP port, as `moescope listen`',
      intArg('--listen', 0, 65535),
    )
    .option(
      '--watch <url>',
      "instead of SOURCE: an SGLang server's Prometheus /metrics, as `moescope watch` (load per layer × GPU each interval)",
    )
    .option('--interval <s>', '--watch: seconds between scrapes', floatArg('--interval', 0.05), 5)
    .option(
      '--samples <n>',
      '--watch: stop reading after N intervals (the dashboard stays until q)',
      intArg('--samples', 1),
    )
    .option('--host <addr>', '--listen: address to listen on (anything but loopback needs --token)', '127.0.0.1')
    .option('--token <t>', '--listen: shared secret every producer must send (default: $MOESCOPE_TOKEN)')
    .option(
      '--devices <d>',
      'assume experts are placed contiguously over D devices (tokens per device, balancedness)',
      intArg('--devices', 1),
      1,
    )
    .option('--plan <file>', 'expert placement from `moescope plan --json`')
    .option(
      '--window <w>',
      'tokens of the sliding window (balance values, heat grid, collapse rules)',
      intArg('--window', 1),
      512,
    )
    .option(
      '--max-maxvio <x>',
      "MaxVio limit drawn on the chart (the collapse rule's)",
      floatArg('--max-maxvio', 0),
      1.5,
    )
    .option('--max-cv <x>', 'CV limit drawn on the chart', floatArg('--max-cv', 0))
    .option(
      '--min-balancedness <x>',
      'balancedness limit drawn on the chart (0 … 1)',
      floatArg('--min-balancedness', 0),
    )
    .option(
      '--prompts <file>',
      'model: prompts file, JSONL or one per line (default: the bundled prompts), looped until q',
    )
    .option('--max-tokens <n>', 'model: tokens to generate per prompt', intArg('--max-tokens', 0), 48)
    .option(
      '--ep <provider>',
      'model: execution provider cpu, cuda or webgpu',
      choiceArg('--ep', ['cpu', 'cuda', 'webgpu'] as const),
      'cpu',
    )
    .option('--device-id <n>', 'model: GPU index for cuda', intArg('--device-id', 0), 0)
    .option('--logits', 'model: capture router logits too')
    .option(
      '--colormap <m>',
      'heat grid colours, both colour-blind safe: viridis or cividis',
      choiceArg('--colormap', ['viridis', 'cividis'] as const),
      'viridis',
    )
    .option('--no-color', 'draw without colour (also when NO_COLOR is set)')
    .addHelpText(
      'after',
      '\nSOURCE: a model, a trace (--follow), or instead --listen PORT (PyTorch ranks) or --watch URL (SGLang metrics).\n' +
        'Keys: q quit · ? keys · space freeze (live, --follow) · w window · c whole run · m CV/balancedness · ↑↓ or the wheel scroll the grid.\n' +
        'Needs a terminal of at least 80×24. docs/dash.md describes every chart.',
    )
    .action(async (source: string | undefined, f: DashFlags) => {
      const { UserError } = await import('../core/errors.js');
      const { interactive } = await import('../views/entry.js');
      if (!interactive())
        throw new UserError(
          'dash needs a terminal (stdin and stdout a TTY); use `moescope stats` or `replay --no-ui` for text',
        );
      if (f.minBalancedness !== undefined && f.minBalancedness > 1)
        throw new UserError(`--min-balancedness must be between 0 and 1, got ${f.minBalancedness}`);
      const thresholds = { maxVio: f.maxMaxvio, cv: f.maxCv ?? null, balancedness: f.minBalancedness ?? null };
      const common = {
        thresholds,
        devices: f.devices,
        plan: f.plan,
        window: f.window,
        color: f.color,
        colormap: f.colormap,
      };
      const dash = await import('../dash/index.js');
      const given = [
        source !== undefined && 'SOURCE',
        f.listen !== undefined && '--listen PORT',
        f.watch !== undefined && '--watch URL',
      ].filter(Boolean);
      if (given.length > 1)
        throw new UserError(`give one of SOURCE, --listen PORT or --watch URL, not ${given.join(' and ')}`);
      if (f.listen !== undefined) return dashListen(f.listen, f, common);
      if (f.watch !== undefined) return dashWatch(f.watch, f, common);
      if (source === undefined)
        throw new UserError('dash needs a SOURCE (a model or a trace), --listen PORT or --watch URL');
      const model = await modelPath(source);
      if (model === null) {
        const { openTrace, traceStream } = await import('../trace/index.js');
        const reader = openTrace(source);
        const notice = reader.truncated
          ? 'the trace is cut short: its complete tokens are shown'
          : !reader.complete && !f.follow
            ? 'no end-of-stream marker: the recorder is still writing or was killed (--follow tails it)'
            : null;
        if (reader.tokenCount === 0 && !f.follow) {
          reader.close();
          throw new UserError(`${source}: the trace has no tokens (use --follow to wait for them)`);
        }
        const stream = traceStream(reader, { follow: f.follow });
        return dash.runDashboard({ ...common, stream, kind: f.follow ? 'follow' : 'replay', notice });
      }
      if (f.follow) throw new UserError('--follow is for traces; a model is shown live anyway');
      const engine = await import('../engine/index.js');
      const { BUNDLED_PROMPTS } = await import('../core/paths.js');
      const { basename, dirname } = await import('node:path');
      const label = `run · ${basename(model) === 'model.onnx' ? basename(dirname(model)) : basename(model)}`;
      const handle = engine.startGeneration({
        model,
        ep: f.ep,
        deviceId: f.deviceId,
        logits: f.logits ?? false,
        prompts: engine.loadPrompts(f.prompts ?? BUNDLED_PROMPTS),
        maxTokens: f.maxTokens,
        loop: true,
      });
      const stream = await engine.generationStream(handle, label); // bad input fails here, before the screen is taken over
      await dash.runDashboard({ ...common, stream, kind: 'live' });
    });
}

/** `dash --listen PORT`: the listener (src/listen) as the source; its log lines go to the status bar. */
async function dashListen(
  port: number,
  f: DashFlags,
  common: Omit<import('../dash/index.js').DashboardOptions, 'stream' | 'kind'>,
): Promise<void> {
  const { Listener } = await import('../listen/listener.js');
  const { listenStream } = await import('../listen/stream.js');
  const dash = await import('../dash/index.js');
  const listener = new Listener({ host: f.host, port, token: f.token ?? (process.env.MOESCOPE_TOKEN || null) });
  const streamP = listenStream(listener, 'listen');
  streamP.catch(() => {});
  await listener.start();
  let show: (line: string) => void = (line) => void process.stderr.write(`moescope dash: ${line}\n`);
  listener.on('log', (line) => show(line));
  const stop = () => void listener.stop();
  process.on('SIGINT', stop);
  show(
    `listening on tcp://${listener.address} (${f.token || process.env.MOESCOPE_TOKEN ? 'token required' : 'no token'}); waiting for the first rank (moescope_probe.attach)`,
  );
  try {
    // The dashboard needs the stream's schema: it comes with the first producer.
    const live = await Promise.race([streamP, listener.done.then(() => null)]);
    if (live === null) return;
    process.off('SIGINT', stop); // the dashboard owns ctrl-c (q quits)
    await dash.runDashboard({
      ...common,
      stream: live,
      label: `listen · ${listener.address}`,
      kind: 'live',
      onFeed: (feed) => (show = (line) => feed.note(line)),
    });
  } finally {
    process.off('SIGINT', stop);
    await listener.stop();
  }
}

/**
 * `dash --watch URL`: a server's EPLB counts per layer × GPU (src/serving/watch.ts) as a count stream: the same model
 * (RoutingModel.addCounts, as `watch` and `replay` of a count trace feed it), one history point per interval.
 */
async function dashWatch(
  url: string,
  f: DashFlags,
  common: Omit<import('../dash/index.js').DashboardOptions, 'stream' | 'kind'>,
): Promise<void> {
  const { openWatchStream } = await import('../serving/watch.js');
  const { printable } = await import('../serving/client.js');
  const dash = await import('../dash/index.js');
  // Bad URLs, pages that are not Prometheus, a server without the histogram: one line here, before the screen.
  const stream = await openWatchStream({
    url,
    intervalMs: f.interval * 1000,
    samples: f.samples ?? null,
    onWaiting: (m) => process.stderr.write(`moescope dash: ${m}\n`),
  });
  await dash.runDashboard({
    ...common,
    stream,
    kind: 'live',
    countsPerDevice: true,
    label: `watch ${printable(stream.metricsUrl)}`,
  });
}

/** The model file SOURCE names (a .onnx file, or a folder holding model.onnx), or null for a trace. */
async function modelPath(source: string): Promise<string | null> {
  const { existsSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { UserError } = await import('../core/errors.js');
  if (!existsSync(source)) throw new UserError(`${source}: no such file or folder`);
  if (statSync(source).isDirectory()) {
    const m = join(source, 'model.onnx');
    if (existsSync(m)) return m;
    throw new UserError(`${source}: a folder without model.onnx (dash takes a model or a trace)`);
  }
  return source.toLowerCase().endsWith('.onnx') ? source : null;
}
