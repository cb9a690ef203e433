import type { Command } from 'commander';
import { modelLabel, runLoading } from './first-frame.js';
import { choiceArg, floatArg, intArg, intListArg } from './options.js';

interface RunFlags {
  prompt?: string;
  prompts?: string;
  inputIds?: number[];
  maxTokens: number;
  batch: number;
  greedy?: boolean;
  temperature?: number;
  seed: number;
  ep: 'cpu' | 'cuda' | 'webgpu';
  deviceId: number;
  tokenizer?: string;
  record?: string;
  logits?: boolean;
  devices: number;
  ui: boolean;
  color: boolean;
  server?: string;
  model?: string;
  api?: 'sglang' | 'vllm';
  layers?: number;
  topK?: number;
  experts?: number;
  scoring: 'softmax' | 'sigmoid';
  timeout: number;
}

export type { RunFlags };

export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      'generate with an ONNX MoE model token by token, or against an SGLang / vLLM server (--server), and capture its routing live',
    )
    .argument('[model]', 'path to an ONNX MoE export (model.onnx; external data beside it is found); not with --server')
    .option('--prompt <text>', 'prompt text')
    .option(
      '--prompts <file>',
      'prompts file: JSONL {"text": …, "domain": …} or one prompt per line (default: the bundled demo prompts)',
    )
    .option('--input-ids <ids>', 'token ids instead of text, e.g. 5,17,3', intListArg('--input-ids'))
    .option(
      '--max-tokens <n>',
      'tokens to generate per prompt (0 = run the prompt only)',
      intArg('--max-tokens', 0),
      32,
    )
    .option(
      '--batch <n>',
      'sequences per forward pass: prompts run N at a time, left-padded into one batch (routing and greedy output as with 1)',
      intArg('--batch', 1, 1024),
      1,
    )
    .option('--greedy', 'greedy decoding (the default)')
    .option('--temperature <t>', 'sample with this temperature', floatArg('--temperature', 0))
    .option('--seed <s>', 'seed for sampling', intArg('--seed', 0), 0)
    .option(
      '--ep <provider>',
      'execution provider: cpu, cuda or webgpu (cuda needs the CUDA build, see README)',
      choiceArg('--ep', ['cpu', 'cuda', 'webgpu'] as const),
      'cpu',
    )
    .option('--device-id <n>', 'GPU index for cuda', intArg('--device-id', 0), 0)
    .option('--tokenizer <file>', 'tokenizer.json (default: the one beside the model)')
    .option('--record <trace>', 'record the routing to an Arrow trace (.arrows)')
    .option('--logits', 'capture router logits too (needed for entropy, z-loss, margins)')
    .option('--devices <d>', 'assume experts are placed contiguously over D devices', intArg('--devices', 1), 1)
    .option('--no-ui', 'print the text and a routing summary instead of the TUI')
    .option('--no-color', 'draw without colour')
    .option(
      '--server <url>',
      'generate on a running SGLang or vLLM server started with --enable-return-routed-experts (docs/serving.md)',
    )
    .option('--model <name>', '--server: the served model (vLLM needs it when it serves several)')
    .option(
      '--api <kind>',
      '--server: sglang or vllm (default: whichever answers)',
      choiceArg('--api', ['sglang', 'vllm'] as const),
    )
    .option(
      '--layers <n>',
      "--server: layers in SGLang's flat routing payload, when the response does not say",
      intArg('--layers', 1),
    )
    .option('--top-k <k>', '--server: experts per token, when the response does not say', intArg('--top-k', 1))
    .option(
      '--experts <e>',
      '--server: experts per layer (default: largest id in the first response + 1)',
      intArg('--experts', 1),
    )
    .option(
      '--scoring <s>',
      '--server: the router scoring, softmax or sigmoid (servers do not say)',
      choiceArg('--scoring', ['softmax', 'sigmoid'] as const),
      'softmax',
    )
    .option('--timeout <s>', '--server: seconds to wait for each response', intArg('--timeout', 1), 300)
    .action(async (model: string | undefined, flags: RunFlags) => {
      if (flags.server !== undefined) {
        const { runServer } = await import('./run-server.js');
        return runServer(model, flags);
      }
      const { UserError } = await import('../core/errors.js');
      if (model === undefined) throw new UserError('run needs a MODEL (an ONNX export) or --server URL');
      for (const [flag, v] of [
        ['--model', flags.model],
        ['--api', flags.api],
        ['--layers', flags.layers],
        ['--top-k', flags.topK],
        ['--experts', flags.experts],
      ] as const)
        if (v !== undefined) throw new UserError(`${flag} goes with --server URL`);
      // Checked before the loading screen goes up: bad flags are an error on the normal screen, not a flash.
      const sources = [flags.prompt, flags.prompts, flags.inputIds].filter((x) => x !== undefined).length;
      if (sources > 1) throw new UserError('give one of --prompt, --prompts and --input-ids.');
      if (flags.greedy && flags.temperature !== undefined && flags.temperature > 0)
        throw new UserError('--greedy and --temperature > 0 contradict each other; choose one.');
      // The TUI needs a terminal on both ends; piped or redirected, run prints what --no-ui prints. Its first frame
      // goes up before the views are imported (src/cli.tsx has usually drawn the same text already); an error while
      // loading (a missing model, a bad prompts file) gives the screen back before it is printed.
      const screen = flags.ui ? await import('../views/loading-screen.js') : null;
      if (!screen?.onTerminal()) return runPlain(model, flags);
      const text = runLoading(model, flags.ep);
      screen.drawLoadingScreen(text.title, text.what);
      try {
        await runLive(model, flags, await import('../views/index.js'));
      } finally {
        screen.leaveLoadingScreen();
      }
    });
}

/** Prompts and generation options from the flags (shared by both paths). */
async function generationOptions(model: string, f: RunFlags) {
  const { BUNDLED_PROMPTS } = await import('../core/paths.js');
  const engine = await import('../engine/index.js');
  const prompts =
    f.inputIds !== undefined
      ? [{ ids: f.inputIds, tag: null }]
      : f.prompt !== undefined
        ? [{ text: f.prompt, tag: null }]
        : engine.loadPrompts(f.prompts ?? BUNDLED_PROMPTS);
  return {
    engine,
    options: {
      model,
      ep: f.ep,
      deviceId: f.deviceId,
      tokenizer: f.tokenizer ?? null,
      logits: f.logits ?? false,
      prompts,
      maxTokens: f.maxTokens,
      batch: f.batch,
      temperature: f.greedy ? 0 : (f.temperature ?? 0),
      seed: f.seed,
    },
  };
}

/** The live TUI over the generation (src/views), recording alongside when asked. */
async function runLive(model: string, f: RunFlags, views: typeof import('../views/index.js')): Promise<void> {
  const { engine, options } = await generationOptions(model, f);
  const label = `run · ${modelLabel(model)}`;
  // With logits, the engine worker scores them (src/stats/live-logits.ts): the thread that draws gets L × 8 numbers.
  const reducer = options.logits ? (await import('../stats/live-logits.js')).LIVE_LOGITS_REDUCER : undefined;
  const handle = engine.startGeneration({ ...options, reducer });
  // Ink, React and Yoga load on this thread while the worker opens the model (a failed load is not waited for).
  const tui = views.loadRunTui().catch(() => null);
  const live = await engine.generationStream(handle, label); // bad input fails here, before the screen is taken over
  await tui;
  let writer: import('../trace/index.js').TraceWriter | null = null;
  let stream: import('../core/routing-stream.js').RoutingStream = live;
  if (f.record) {
    const { TraceWriter } = await import('../trace/index.js');
    const { tapStream } = await import('../core/routing-stream.js');
    const w = TraceWriter.create(f.record, { schema: live.schema, meta: live.meta, inputs: [model] });
    w.closeOnExit({ signals: ['SIGTERM', 'SIGHUP'] });
    stream = tapStream(live, (item) => {
      if (item.kind === 'tokens') w.write(item.batch);
      else if (item.kind === 'memory') w.writeMemory(item.sample);
    });
    writer = w;
  }
  try {
    await views.runLiveTui({
      stream,
      label: live.label,
      recording: f.record ?? null,
      placement: views.contiguousSpec(live.schema, f.devices),
      color: f.color,
      postedLogits: reducer !== undefined,
    });
  } finally {
    writer?.close();
  }
}

/** `run --no-ui`: stream the generated text, record the trace, and print a routing summary per MoE layer. */
async function runPlain(model: string, f: RunFlags): Promise<void> {
  const { engine, options } = await generationOptions(model, f);
  const h = engine.startGeneration(options);
  const { printText } = await import('../core/sanitize.js');
  const out = (s: string) => printText(s); // generated text and device names are data: sanitised
  const info = await h.ready;
  const { describeSchema } = await import('../core/batch.js');
  const { loadShares } = await import('../stats/index.js');
  const { ShapedStats } = await import('../stats/shaped-stats.js');
  const { deviceLoads, contiguousPlacement } = await import('../stats/placement.js');
  // Each layer over its own E and K (layers of a model may differ: src/core/shapes.ts).
  // LongCat's zero-computation experts: balance over the real experts, as `stats` reports it.
  const zeroIds = info.schema.layers.map((_, l) => info.meta.routers[l]?.zeroExperts?.ids);
  const stats = new ShapedStats(info.schema, { window: 0, collapse: false, zeroExperts: zeroIds });
  let writer: import('../trace/index.js').TraceWriter | null = null;
  if (f.record) {
    const { TraceWriter } = await import('../trace/index.js');
    writer = TraceWriter.create(f.record, { schema: info.schema, meta: info.meta, inputs: [model] });
    writer.closeOnExit({ signals: ['SIGTERM', 'SIGHUP'] });
  }
  const onInt = () => void h.stop();
  process.once('SIGINT', onInt);

  out(
    `${model}: ${describeSchema(info.schema)} · ${info.kvCache ? 'KV-cache decode' : 'full recompute per token'} · ${info.meta.devices.join(', ')}\n`,
  );
  let promptTokens = 0;
  let generatedTokens = 0;
  try {
    for await (const e of h) {
      switch (e.type) {
        case 'batch':
          stats.add(e.batch);
          writer?.write(e.batch);
          for (let i = 0; i < e.batch.length; i++) e.batch.isPrompt[i] ? promptTokens++ : generatedTokens++;
          break;
        case 'memory':
          writer?.writeMemory(e.sample);
          break;
        case 'sequence-start':
          out(`\n[${e.seq}${e.tag ? ' ' + e.tag : ''}] ${e.prompt}`);
          if (f.maxTokens > 0) out('\n→ ');
          break;
        case 'text':
          out(e.delta);
          break;
        case 'sequence-end': {
          const r = e.result;
          const rate =
            r.generatedIds.length && r.decodeMs > 0
              ? `, ${((r.generatedIds.length * 1000) / r.decodeMs).toFixed(1)} tok/s`
              : '';
          const stop = r.stop === 'eos' ? ', stopped at end-of-sequence' : r.stop === 'stopped' ? ', interrupted' : '';
          out(`\n  (${r.promptIds.length} prompt + ${r.generatedIds.length} generated tokens${rate}${stop})\n`);
          break;
        }
      }
    }
    await h.done;
  } finally {
    process.off('SIGINT', onInt);
    writer?.close();
  }

  // Routing summary: the busiest experts of each MoE layer, with shares of assignments (src/stats).
  const shown = Math.min(Math.max(4, 2 * info.schema.topK), 8);
  out(`\nrouting: ${promptTokens + generatedTokens} tokens (${promptTokens} prompt, ${generatedTokens} generated)\n`);
  if (stats.tokens === 0) return;
  const { metric } = await import('../stats/catalogue.js');
  const { formatTable } = await import('../core/text-table.js');
  const { fmt } = await import('../core/number-format.js');
  const cv = metric('cv');
  const dead = metric('dead');
  const rows: string[][] = [['layer', `top ${shown} experts (share of assignments)`, cv.label, dead.label]];
  const loads: Float64Array[] = [];
  info.schema.layers.forEach((layer, l) => {
    const m = stats.layerMetrics(l, 'run');
    loads.push(Float64Array.from(m.load));
    const top = m.share
      .map((s, e) => ({ e, s }))
      .sort((a, b) => b.s - a.s || a.e - b.e)
      .slice(0, Math.min(shown, m.load.length))
      .map((x) => `e${x.e}${zeroIds[l]?.includes(x.e) ? 'z' : ''} ${(100 * x.s).toFixed(1)}%`)
      .join('  ');
    rows.push([String(layer), top, fmt(cv.layer(m), cv.digits), fmt(dead.layer(m), dead.digits)]);
  });
  if (f.devices > 1) {
    // Each layer placed over its own experts (one placement for all when they share E).
    const per = loads.map((x) => deviceLoads([x], contiguousPlacement(x.length, f.devices))[0]!);
    rows[0]!.push(`load on ${f.devices} devices`);
    per.forEach((d, l) =>
      rows[l + 1]!.push(Array.from(loadShares(d, 0, f.devices), (s) => `${(100 * s).toFixed(0)}%`).join(' / ')),
    );
  }
  for (const line of formatTable(rows, { align: rows[0]!.map((_, i) => (i === 0 ? 'right' : 'left')) }))
    out(line + '\n');
  // What the trace cannot vouch for: zero experts (z above; balance over the real ones), weights not followed.
  const zeroLayers = info.schema.layers.flatMap((layer, l) => {
    const z = stats.layerMetrics(l, 'run').zeroShare;
    return z === null ? [] : [`layer ${layer} ${(100 * z).toFixed(1)}%`];
  });
  if (zeroLayers.length)
    out(
      `  z: zero-computation experts; ${cv.label} and ${dead.label} are over the real experts; share of slots routed to the zero experts: ${zeroLayers.join(', ')}\n`,
    );
  info.meta.routers.forEach((r, l) => {
    if (r.mixing === 'not-followed')
      out(
        `  warning: layer ${info.schema.layers[l] ?? r.layer}: weights not followed to the mixing (${r.mixingNote || 'no reason recorded'}); its selection is the model's, its weights are unknown (NaN in the trace)\n`,
      );
  });
  if (f.record) out(`recorded ${f.record}\n`);
}
