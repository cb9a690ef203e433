/** `moescope run --server URL`: the live TUI (or --no-ui text) over a running SGLang / vLLM server's routing. */
import type { RunFlags } from './run.js';

export async function runServer(model: string | undefined, f: RunFlags): Promise<void> {
  const { UserError } = await import('../core/errors.js');
  if (model !== undefined) throw new UserError(`give either a MODEL or --server, not both (got ${model})`);
  for (const [flag, v] of [
    ['--input-ids', f.inputIds],
    ['--logits', f.logits],
    ['--tokenizer', f.tokenizer],
  ] as const)
    if (v !== undefined)
      throw new UserError(`${flag} does not go with --server (the server tokenizes; servers return expert ids only)`);
  if (f.ep !== 'cpu') throw new UserError('--ep does not go with --server (the server runs the model)');
  if (f.prompt !== undefined && f.prompts !== undefined) throw new UserError('give one of --prompt and --prompts.');
  if (f.greedy && f.temperature !== undefined && f.temperature > 0)
    throw new UserError('--greedy and --temperature > 0 contradict each other; choose one.');
  const { BUNDLED_PROMPTS } = await import('../core/paths.js');
  const { loadPrompts } = await import('../engine/prompts.js');
  const prompts =
    f.prompt !== undefined
      ? [{ text: f.prompt, tag: null }]
      : loadPrompts(f.prompts ?? BUNDLED_PROMPTS).map((p) => ({
          text: 'text' in p ? String(p.text) : '',
          tag: p.tag ?? null,
        }));
  const { openServerStream, printable } = await import('../serving/client.js');
  const views = f.ui ? await import('../views/index.js') : null;
  const live = views?.interactive() ?? false;
  const { printError, printText } = await import('../core/sanitize.js');
  const out = (s: string) => printText(s); // server text is data: sanitised (src/core/sanitize.ts)
  // A server that is not there, or returns no routing, fails here (one line, exit 2), before the screen is taken.
  const served = await openServerStream({
    url: f.server!,
    model: f.model,
    api: f.api,
    prompts,
    maxTokens: f.maxTokens,
    temperature: f.greedy ? 0 : (f.temperature ?? 0),
    layers: f.layers,
    topK: f.topK,
    experts: f.experts,
    scoring: f.scoring,
    timeoutMs: f.timeout * 1000,
    onServed: live
      ? undefined
      : (e) => {
          out(
            `\n[${e.seq}${e.tag ? ' ' + printable(e.tag) : ''}] ${printable(e.prompt)}\n→ ${printable(e.text ?? '')}\n`,
          );
          const counts =
            e.promptTokens !== null && e.generatedTokens !== null
              ? `${e.promptTokens} prompt + ${e.generatedTokens} generated tokens, `
              : '';
          out(`  (${counts}${e.routedTokens} routed, ${(e.ms / 1000).toFixed(2)} s)\n`);
        },
  });
  for (const n of served.notes) printError(`note: ${n}`);
  let stream: import('../core/routing-stream.js').RoutingStream = served;
  let writer: import('../trace/index.js').TraceWriter | null = null;
  if (f.record) {
    const { TraceWriter } = await import('../trace/index.js');
    const { tapStream } = await import('../core/routing-stream.js');
    const w = TraceWriter.create(f.record, { schema: served.schema, meta: served.meta });
    w.closeOnExit({ signals: ['SIGTERM', 'SIGHUP'] });
    stream = tapStream(served, (item) => {
      if (item.kind === 'tokens') w.write(item.batch);
    });
    writer = w;
  }
  // The status bar keeps a label's last path component: name the model by its last component.
  const label = `${served.api} server · ${printable((served.meta.model ?? '').split('/').pop() || f.server!)}`;
  try {
    if (live && views) {
      await views.runLiveTui({
        stream,
        label,
        recording: f.record ?? null,
        placement: views.contiguousSpec(served.schema, f.devices),
        color: f.color,
      });
      return;
    }
    const { collectLive, formatSummary, contiguousSpec } = await import('../views/index.js');
    const onInt = () => stream.close();
    process.once('SIGINT', onInt);
    try {
      const modelView = await collectLive(stream);
      out(
        '\n' +
          formatSummary(
            modelView,
            { title: `run --server ${printable(f.server!)}`, notes: [] },
            contiguousSpec(served.schema, f.devices),
          ),
      );
    } finally {
      process.off('SIGINT', onInt);
    }
    if (f.record) out(`recorded ${f.record}\n`);
  } finally {
    writer?.close();
  }
}
