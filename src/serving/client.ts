/**
 * `run --server URL`: generate against a running SGLang or vLLM server, one prompt at a time, and turn each
 * response's per-request routing into routing batches (docs/serving.md#live-against-a-server).
 *
 * SGLang: POST /generate {text, sampling_params, return_routed_experts, return_logprob, logprob_start_len: 0,
 * return_text_in_logprobs} — the logprobs carry every token's id and text. vLLM: POST /v1/completions {model,
 * prompt, max_tokens, temperature, return_token_ids, logprobs: 0, prompt_logprobs: 0} — token ids, and texts from
 * the logprobs. Which server it is comes from --api, else from which of GET /get_model_info (SGLang) and
 * GET /v1/models (vLLM) answers. The servers return the routing with the finished response, so the view advances one
 * request at a time.
 *
 * The result is a RoutingStream, so the live TUI, the recorder and the summary consume it like any other source.
 */
import { RoutingBatchBuilder, type Scoring } from '../core/batch.js';
import { UserError, describeError } from '../core/errors.js';
import { sanitizeLine } from '../core/sanitize.js';
import type { RoutingStream, StreamEnd, StreamItem } from '../core/routing-stream.js';
import { parseResponse, type ServerApi } from './responses.js';
import { requestTokens, servedMeta, servedSchema, type ServedSchema } from './tokens.js';

export interface ServerPrompt {
  text: string;
  tag: string | null;
}

export interface ServerRunOptions {
  /** Base URL, e.g. http://127.0.0.1:30000 */
  url: string;
  /** Served model name (vLLM's `model` field; SGLang: label only). */
  model?: string;
  api?: ServerApi;
  prompts: ServerPrompt[];
  maxTokens: number;
  temperature: number;
  layers?: number;
  topK?: number;
  experts?: number;
  scoring: Scoring;
  /** Per-request timeout, ms (default 300 s). */
  timeoutMs?: number;
}

/** One finished request, for the plain printer. */
export interface ServedEvent {
  seq: number;
  prompt: string;
  tag: string | null;
  text: string | null;
  promptTokens: number | null;
  generatedTokens: number | null;
  routedTokens: number;
  ms: number;
}

/** Server-supplied text on one terminal line (core's sanitiser: escapes made visible, never interpreted). */
export function printable(s: string): string {
  return sanitizeLine(s);
}

export function normalizeUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--server ${printable(url)} is not a URL (e.g. http://127.0.0.1:30000)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UserError(`--server ${printable(url)}: only http and https servers`);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/** Largest answer read (a long request's routing of 61 layers × k 8 is a few MB). */
const MAX_ANSWER_BYTES = 256 << 20;

async function request(url: URL, body: unknown | undefined, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  const ctrl = new AbortController();
  const timer = setTimeout(
    () => ctrl.abort(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)),
    timeoutMs,
  );
  const onAbort = () => ctrl.abort(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const where = printable(url.href);
  const failed = (e: unknown) => {
    const cause = (e as { cause?: unknown }).cause;
    const why = ctrl.signal.aborted ? describeError(ctrl.signal.reason) : describeError(cause ?? e);
    return new UserError(`${where}: ${printable(why)}`);
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, {
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctrl.signal,
      });
    } catch (e) {
      throw failed(e);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > MAX_ANSWER_BYTES)
      throw new UserError(`${where}: an answer of ${declared} bytes is beyond what moescope reads`);
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw failed(e);
    }
    if (text.length > MAX_ANSWER_BYTES)
      throw new UserError(`${where}: an answer of ${text.length} characters is beyond what moescope reads`);
    if (!res.ok)
      throw new UserError(
        `${where}: HTTP ${res.status}${text ? `: ${printable(text.split('\n')[0]!.slice(0, 200))}` : ''}`,
      );
    return text;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** HTTP GET of text, with a timeout; a UserError naming the URL for anything but a 2xx answer. */
export function requestText(url: URL, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  return request(url, undefined, timeoutMs, signal);
}

/** HTTP GET or POST of JSON, with a timeout; a UserError naming the URL for anything but a 2xx JSON answer. */
async function requestJson(
  url: URL,
  body: unknown | undefined,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<unknown> {
  const text = await request(url, body, timeoutMs, signal);
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${printable(url.href)}: the answer is not JSON`);
  }
}

/**
 * Layers and k of the model, when the server's model info says (SGLang's /get_model_info does not in the releases
 * read here; a build or proxy that adds the HF config's num_hidden_layers / num_experts_per_tok is used).
 */
function shapeFromInfo(r: Record<string, unknown>): { layers?: number; topK?: number } {
  const out: { layers?: number; topK?: number } = {};
  for (const src of [r, r.hf_config, r.model_config, r.config]) {
    if (!src || typeof src !== 'object') continue;
    const o = src as Record<string, unknown>;
    const pos = (v: unknown) => (Number.isSafeInteger(v) && (v as number) > 0 ? (v as number) : undefined);
    out.layers ??= pos(o.num_hidden_layers);
    out.topK ??= pos(o.num_experts_per_tok);
  }
  return out;
}

/** Which server answers at `base`, and the model it serves (with its layers and k when the server says). */
async function detectServer(
  base: URL,
  o: { api?: ServerApi; model?: string },
  timeoutMs: number,
): Promise<{ api: ServerApi; model: string | null; layers?: number; topK?: number }> {
  const info = async (path: string) => {
    try {
      return await requestJson(new URL(path, base), undefined, timeoutMs);
    } catch (e) {
      if (e instanceof UserError) return e;
      throw e;
    }
  };
  if (o.api !== 'vllm') {
    const r = await info('get_model_info');
    if (!(r instanceof Error) && r && typeof r === 'object' && 'model_path' in r)
      return {
        api: 'sglang',
        model: o.model ?? (typeof r.model_path === 'string' ? r.model_path : null),
        ...shapeFromInfo(r as Record<string, unknown>),
      };
    if (o.api === 'sglang')
      throw r instanceof Error ? r : new UserError(`${printable(base.href)}get_model_info: not an SGLang server`);
  }
  const r = await info('v1/models');
  if (r instanceof Error) {
    if (o.api === 'vllm') throw r;
    throw new UserError(
      `${printable(base.href)}: neither an SGLang (GET /get_model_info) nor a vLLM (GET /v1/models) server answered (${r.message})`,
    );
  }
  const data =
    r && typeof r === 'object' && Array.isArray((r as { data?: unknown }).data)
      ? (r as { data: { id?: unknown }[] }).data
      : [];
  const ids = data.map((d) => d?.id).filter((x): x is string => typeof x === 'string');
  if (o.model !== undefined) {
    if (ids.length && !ids.includes(o.model))
      throw new UserError(`the server serves ${ids.map(printable).join(', ')}, not --model ${printable(o.model)}`);
    return { api: 'vllm', model: o.model };
  }
  if (ids.length !== 1)
    throw new UserError(
      `the server serves ${ids.length ? ids.map(printable).join(', ') : 'no model it names'}: give --model NAME`,
    );
  return { api: 'vllm', model: ids[0]! };
}

function requestBody(api: ServerApi, model: string | null, p: ServerPrompt, o: ServerRunOptions): unknown {
  if (api === 'sglang')
    return {
      text: p.text,
      sampling_params: { max_new_tokens: o.maxTokens, temperature: o.temperature },
      return_routed_experts: true,
      return_logprob: true,
      logprob_start_len: 0,
      return_text_in_logprobs: true,
    };
  return {
    model,
    prompt: p.text,
    max_tokens: o.maxTokens,
    temperature: o.temperature,
    return_token_ids: true,
    logprobs: 0,
    prompt_logprobs: 0,
  };
}

/** What a polled source says of itself before its data. */
export type StreamHead = Pick<RoutingStream, 'label' | 'schema' | 'meta' | 'kind' | 'tokens' | 'notes'>;

/**
 * A stream over a server moescope polls (asking prompts, scraping metrics): close() aborts the request in flight
 * through `abort`; end() is complete when `produce` ran out on its own (not closed), else names the error.
 */
export function polledStream<T extends StreamHead>(
  head: T,
  abort: AbortController,
  produce: (closed: () => boolean) => AsyncGenerator<StreamItem>,
): T & RoutingStream {
  let closed = false;
  let finish!: (e: StreamEnd) => void;
  const ended = new Promise<StreamEnd>((r) => (finish = r));
  return {
    ...head,
    seek: null,
    end: () => ended,
    close() {
      closed = true;
      abort.abort(new Error('stopped'));
    },
    async *items(): AsyncGenerator<StreamItem> {
      try {
        yield* produce(() => closed);
        finish({ complete: !closed, truncated: null, error: null });
      } catch (e) {
        finish({ complete: false, truncated: null, error: describeError(e) });
        throw e;
      }
    },
  };
}

export interface ServerStream extends RoutingStream {
  readonly api: ServerApi;
}

/**
 * Opens the server as a RoutingStream (src/core/routing-stream.ts). The server is detected and the first prompt
 * answered before this resolves — a server that is not there, or returns no routing, fails here (a UserError),
 * before any screen is taken over — because the schema (layers, k, E) comes from that first response. Later
 * prompts are asked as the consumer pulls; close() aborts the request in flight.
 */
export async function openServerStream(
  o: ServerRunOptions & { onServed?: (e: ServedEvent) => void },
): Promise<ServerStream> {
  const timeout = o.timeoutMs ?? 300_000;
  const base = normalizeUrl(o.url);
  const info = await detectServer(base, o, Math.min(timeout, 30_000));
  const { api, model } = info;
  // Flags win; the server's model info fills in what they leave out (SGLang's flat payload needs layers or k).
  const layers = o.layers ?? info.layers;
  const topK = o.topK ?? info.topK;
  const path = api === 'sglang' ? 'generate' : 'v1/completions';
  const abort = new AbortController();
  const ask = async (seq: number) => {
    const p = o.prompts[seq]!;
    const t0 = performance.now();
    const answer = await requestJson(new URL(path, base), requestBody(api, model, p, o), timeout, abort.signal);
    const ms = performance.now() - t0;
    const req = parseResponse(answer, { layers, topK }, `${printable(base.href)}${path} (prompt ${seq})`)[0]!;
    if (req.api !== api)
      throw new UserError(
        `${printable(base.href)}${path}: the answer is a ${req.api} response, the server looked like ${api}`,
      );
    return { req, ms, tNs: BigInt(Date.now()) * 1_000_000n };
  };
  if (o.prompts.length === 0) throw new UserError('no prompts to send');
  const first = await ask(0);
  const s: ServedSchema = servedSchema([first.req], { experts: o.experts, scoring: o.scoring });
  if (o.experts === undefined)
    s.notes.push('later requests must stay below that; give --experts when the model has more');
  const head = {
    api,
    label: `${api} server ${printable(base.href)}`,
    schema: s.schema,
    meta: servedMeta(api, model, 'server'),
    kind: 'tokens' as const,
    tokens: null,
    notes: s.notes,
  };
  return polledStream(head, abort, async function* (closed) {
    let next = 0;
    for (let seq = 0; seq < o.prompts.length && !closed(); seq++) {
      let r: Awaited<ReturnType<typeof ask>>;
      try {
        r = seq === 0 ? first : await ask(seq);
      } catch (e) {
        if (closed()) break; // the user quit while a request was in flight
        throw e;
      }
      const p = o.prompts[seq]!;
      const b = new RoutingBatchBuilder(s.schema, Math.max(r.req.routing.rows, 1));
      for (const t of requestTokens(r.req, seq, s, r.tNs)) b.push({ ...t, tag: p.tag });
      o.onServed?.({
        seq,
        prompt: p.text,
        tag: p.tag,
        text: r.req.text,
        promptTokens: r.req.promptLen,
        generatedTokens: r.req.outputLen,
        routedTokens: r.req.routing.rows,
        ms: r.ms,
      });
      if (b.length > 0) {
        const batch = b.finish();
        yield { kind: 'tokens', batch, firstToken: next, memory: [] };
        next += batch.length;
      }
    }
  });
}
