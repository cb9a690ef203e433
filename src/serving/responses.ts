/**
 * Saved or live responses of SGLang and vLLM → the routing of each request, aligned with its tokens.
 *
 * Both servers return the routing of every token that went through the model: the prompt, then each generated
 * token but the last (it was sampled, never forwarded), so a request of P prompt and C generated tokens has
 * P + C − 1 rows; SGLang's `routed_experts_start_len` / vLLM's `routed_experts_prompt_start` drop leading rows.
 * When the token counts are known the rows are aligned to the END of that span (position = P + C − 1 − rows + i).
 *
 * SGLang /generate: {text, output_ids?, meta_info: {prompt_tokens, completion_tokens, routed_experts,
 *   routed_experts_dtype?, input_token_logprobs?: [[logprob, id, text?]…], output_token_logprobs?}}
 *   (a batch request returns a list of those; the OpenAI endpoints carry the payload in `sglext.routed_experts`).
 * vLLM /v1/completions, /v1/chat/completions, /inference/v1/generate: {choices: [{text?, token_ids?,
 *   prompt_token_ids?, routed_experts, logprobs?}], prompt_token_ids?, prompt_routed_experts?, prompt_logprobs?,
 *   usage?: {prompt_tokens, completion_tokens}}.
 */
import { UserError } from '../core/errors.js';
import { concatRouted, decodeSglangRouted, decodeVllmRouted, type RoutedExperts } from './routed-experts.js';

export type ServerApi = 'sglang' | 'vllm';

export interface ServedRequest {
  api: ServerApi;
  /** The server's request id (SGLang meta_info.id, vLLM id or request_id; #choice when n > 1), when it says. */
  id: string | null;
  routing: RoutedExperts;
  /** Sequence position of the first routed row. */
  start: number;
  /** Prompt and completion token counts, when the response says. */
  promptLen: number | null;
  outputLen: number | null;
  /** Token ids of the prompt followed by the completion, when known (−1 where not). */
  ids: number[] | null;
  /** Text of each token, same indexing as ids, when known. */
  texts: (string | null)[] | null;
  /** The generated text. */
  text: string | null;
}

export interface ResponseOptions {
  /** Layers of the flat SGLang payload (--layers). */
  layers?: number;
  /** Experts per token (--top-k). */
  topK?: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): number | null => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : null);

/** [[logprob, id, text?], …] → ids and texts; null when the list is not that shape. */
function logprobTokens(v: unknown): { ids: number[]; texts: (string | null)[] } | null {
  if (!Array.isArray(v)) return null;
  const ids: number[] = [];
  const texts: (string | null)[] = [];
  for (const e of v) {
    if (!Array.isArray(e) || !Number.isSafeInteger(e[1])) return null;
    ids.push(e[1] as number);
    texts.push(typeof e[2] === 'string' ? e[2] : null);
  }
  return { ids, texts };
}

function intList(v: unknown): number[] | null {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x)) ? (v as number[]) : null;
}

/** Which server wrote this response object, or null when it holds no routing. */
function responseApi(o: unknown): ServerApi | null {
  if (!isObj(o)) return null;
  if (isObj(o.meta_info) && 'routed_experts' in o.meta_info) return 'sglang';
  if (isObj(o.sglext) && 'routed_experts' in o.sglext) return 'sglang';
  if (Array.isArray(o.choices) && o.choices.some((c) => isObj(c) && ('routed_experts' in c || isObj(c.meta_info))))
    return o.choices.some((c) => isObj(c) && isObj(c.meta_info) && 'routed_experts' in c.meta_info) ? 'sglang' : 'vllm';
  return null;
}

function align(r: Omit<ServedRequest, 'start'>, what: string): ServedRequest {
  let start = 0;
  // vLLM's generate endpoint returns the completion's ids only: with no start offset, rows = P + C − 1 gives P.
  if (r.promptLen === null && r.outputLen !== null && r.routing.rows + 1 >= r.outputLen)
    r = { ...r, promptLen: r.routing.rows + 1 - r.outputLen };
  if (r.promptLen !== null && r.outputLen !== null) {
    const span = Math.max(r.promptLen + r.outputLen - 1, 0);
    if (r.routing.rows > span)
      throw new UserError(
        `${what}: ${r.routing.rows} routed tokens, more than the ${r.promptLen} prompt + ${r.outputLen} generated − 1 the response counts`,
      );
    start = span - r.routing.rows;
  }
  return { ...r, start };
}

function sglangRequest(o: Obj, meta: Obj, payload: unknown, opts: ResponseOptions, what: string): ServedRequest {
  if (typeof payload !== 'string')
    throw new UserError(
      `${what}: routed_experts must be a base64 string, got ${payload === null ? 'null' : typeof payload}`,
    );
  const input = logprobTokens(meta.input_token_logprobs);
  const output = logprobTokens(meta.output_token_logprobs);
  const outIds = intList(o.output_ids) ?? output?.ids ?? null;
  const promptLen = count(meta.prompt_tokens) ?? input?.ids.length ?? null;
  const outputLen = count(meta.completion_tokens) ?? outIds?.length ?? null;
  const startLen = count(meta.routed_experts_start_len) ?? 0;
  // Rows: from the counts unless the user gave the whole shape (then the payload's size says, and the rows are
  // aligned to the end of the span — a request with routed_experts_start_len that the response does not echo).
  const rows =
    opts.layers !== undefined && opts.topK !== undefined
      ? undefined
      : promptLen !== null && outputLen !== null
        ? Math.max(promptLen + outputLen - 1 - startLen, 0)
        : undefined;
  const routing = decodeSglangRouted(
    payload,
    meta.routed_experts_dtype,
    { rows, layers: opts.layers, topK: opts.topK },
    what,
  );
  const promptKnown = input !== null && promptLen !== null && input.ids.length === promptLen;
  const ids = promptKnown && outIds ? [...input.ids, ...outIds] : null;
  const texts =
    promptKnown && output && ids && output.ids.length === outIds!.length ? [...input.texts, ...output.texts] : null;
  return align(
    {
      api: 'sglang',
      id: typeof meta.id === 'string' ? meta.id : typeof o.id === 'string' ? o.id : null,
      routing,
      promptLen,
      outputLen,
      ids,
      texts,
      text: typeof o.text === 'string' ? o.text : null,
    },
    what,
  );
}

/** vLLM prompt_logprobs: [null, {"<id>": {decoded_token}}, …] → the prompt token texts. */
function promptTexts(v: unknown, ids: number[]): (string | null)[] | null {
  if (!Array.isArray(v) || v.length !== ids.length) return null;
  return v.map((e, i) => {
    if (!isObj(e)) return null;
    const hit = e[String(ids[i])];
    return isObj(hit) && typeof hit.decoded_token === 'string' ? hit.decoded_token : null;
  });
}

/** Completion token texts: completions API logprobs.tokens, chat API logprobs.content[].token. */
function outputTexts(lp: unknown, n: number): (string | null)[] | null {
  if (!isObj(lp)) return null;
  if (Array.isArray(lp.tokens) && lp.tokens.length === n)
    return lp.tokens.map((t) => (typeof t === 'string' ? t : null));
  if (Array.isArray(lp.content) && lp.content.length === n)
    return lp.content.map((c) => (isObj(c) && typeof c.token === 'string' ? c.token : null));
  return null;
}

function vllmRequests(o: Obj, what: string): ServedRequest[] {
  const choices = o.choices as unknown[];
  const usage = isObj(o.usage) ? o.usage : {};
  const out: ServedRequest[] = [];
  choices.forEach((c, i) => {
    const at = choices.length > 1 ? `${what} choice ${i}` : what;
    if (!isObj(c)) throw new UserError(`${at}: a choice must be an object`);
    if (c.routed_experts === undefined || c.routed_experts === null) {
      if (o.prompt_routed_experts === undefined || o.prompt_routed_experts === null)
        throw new UserError(`${at}: no routed_experts (start vLLM with --enable-return-routed-experts)`);
    }
    const parts: RoutedExperts[] = [];
    if (o.prompt_routed_experts !== undefined && o.prompt_routed_experts !== null)
      parts.push(decodeVllmRouted(o.prompt_routed_experts, `${what} prompt_routed_experts`));
    if (c.routed_experts !== undefined && c.routed_experts !== null)
      parts.push(decodeVllmRouted(c.routed_experts, `${at} routed_experts`));
    const routing = concatRouted(parts, at);
    const promptIds = intList(c.prompt_token_ids) ?? intList(o.prompt_token_ids);
    const outIds = intList(c.token_ids);
    const promptLen = promptIds?.length ?? (choices.length === 1 ? count(usage.prompt_tokens) : null);
    const outputLen = outIds?.length ?? (choices.length === 1 ? count(usage.completion_tokens) : null);
    const ids = promptIds && outIds ? [...promptIds, ...outIds] : null;
    const pt = promptIds ? promptTexts(c.prompt_logprobs ?? o.prompt_logprobs, promptIds) : null;
    const ot = outIds ? outputTexts(c.logprobs, outIds.length) : null;
    const texts =
      ids && (pt || ot) ? [...(pt ?? promptIds!.map(() => null)), ...(ot ?? outIds!.map(() => null))] : null;
    const msg = isObj(c.message) ? c.message.content : undefined;
    const text = typeof c.text === 'string' ? c.text : typeof msg === 'string' ? msg : null;
    const rid = typeof o.id === 'string' ? o.id : typeof o.request_id === 'string' ? o.request_id : null;
    const id = rid !== null && choices.length > 1 ? `${rid}#${typeof c.index === 'number' ? c.index : i}` : rid;
    out.push(align({ api: 'vllm', id, routing, promptLen, outputLen, ids, texts, text }, at));
  });
  return out;
}

/** The routed requests of one response object (a vLLM response with n > 1 holds several). */
export function parseResponse(o: unknown, opts: ResponseOptions, what: string): ServedRequest[] {
  const api = responseApi(o);
  if (api === null) {
    if (isObj(o) && isObj(o.meta_info))
      throw new UserError(
        `${what}: an SGLang response without meta_info.routed_experts (start the server with --enable-return-routed-experts and ask with return_routed_experts)`,
      );
    throw new UserError(`${what}: not an SGLang or vLLM response with routed experts`);
  }
  const r = o as Obj;
  if (api === 'vllm') return vllmRequests(r, what);
  if (isObj(r.meta_info) && 'routed_experts' in r.meta_info)
    return [sglangRequest(r, r.meta_info, r.meta_info.routed_experts, opts, what)];
  if (isObj(r.sglext))
    return [sglangRequest(r, { ...(isObj(r.usage) ? r.usage : {}), ...r.sglext }, r.sglext.routed_experts, opts, what)];
  return (r.choices as unknown[]).map((c, i) => {
    const meta = (c as Obj).meta_info as Obj;
    return sglangRequest(c as Obj, meta, meta.routed_experts, opts, `${what} choice ${i}`);
  });
}

/**
 * Whether layer l of a payload holds routing: a layer the server never routed (a dense layer of a model whose
 * first layers are dense: SGLang's buffer spans num_hidden_layers) stays at its fill value — all −1, or all 0
 * (a real top-k with k > 1 never picks one expert twice, so an all-zero selection is a fill).
 */
export function routedLayers(r: RoutedExperts): boolean[] {
  const { rows, layers: L, topK: K, ids } = r;
  const out = new Array<boolean>(L).fill(false);
  for (let l = 0; l < L; l++) {
    if (K === 1) {
      for (let t = 0; t < rows && !out[l]; t++) if (ids[t * L + l]! >= 0) out[l] = true;
      continue;
    }
    for (let t = 0; t < rows && !out[l]; t++) {
      const o = (t * L + l) * K;
      for (let k = 0; k < K; k++)
        if (ids[o + k]! > 0) {
          out[l] = true;
          break;
        }
    }
  }
  return out;
}
