/**
 * The generation loop: for each prompt, one forward pass over the prompt (one batch of prompt tokens), then one
 * pass per generated token (one batch each). A generated token's routing is what the model computes when that
 * token is fed, so N generated tokens take N passes after the prompt; the last pass's logits are not sampled.
 * Runs wherever it is called — the worker (src/engine/worker.ts) or in-process (tests, benchmarks).
 */
import type { RoutingBatch } from '../core/batch.js';
import { encodeF16 } from '../core/f16.js';
import { UserError } from '../core/errors.js';
import type { RoutingRows } from './capture.js';
import type { ModelRunner } from './runner.js';
import { CLEAN_UP_OPENERS, CLEAN_UP_REACH, type TextCodec } from './tokenizer.js';

export interface PromptSpec {
  /** Prompt text (needs a tokenizer). */
  text?: string;
  /** Token ids instead of text. */
  ids?: number[];
  /** Label carried by every token of this prompt (its domain: "code", "prose" …). */
  tag?: string | null;
}

export interface GenerateOptions {
  prompts: PromptSpec[];
  /** Tokens to generate per prompt; 0 runs the prompt only. */
  maxTokens: number;
  /** 0 or absent: greedy. */
  temperature?: number;
  seed?: number;
  /** Cycle through the prompts until stopped (the live demo). */
  loop?: boolean;
  /** Stop a sequence at an end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** First sequence id (default 0). */
  firstSeq?: number;
  /**
   * Sequences per forward pass (default 1). Above 1, prompts run in groups of this many, left-padded into one
   * batch (runner.forwardBatch); each sequence's events are emitted together, in order, when its group finishes.
   * Greedy output and routing equal batch 1; sampling draws from the same seeded generator in another order.
   */
  batch?: number;
}

export type StopReason = 'max-tokens' | 'eos' | 'stopped';

export interface SequenceResult {
  seq: number;
  tag: string | null;
  prompt: string;
  promptIds: number[];
  generatedIds: number[];
  text: string;
  stop: StopReason;
  /** Time of the prompt pass and of all decode passes, ms. */
  promptMs: number;
  decodeMs: number;
}

export type GenerationEvent =
  /** `derived`: what GenerationOptions.reducer computed from the batch in the inference thread, when one is set. */
  | { type: 'batch'; batch: RoutingBatch; derived?: unknown }
  | { type: 'sequence-start'; seq: number; tag: string | null; prompt: string; promptIds: number[] }
  /** Text appended to the sequence's decoded output by the latest generated token. */
  | { type: 'text'; seq: number; tokenId: number; delta: string }
  | { type: 'sequence-end'; result: SequenceResult }
  /** After the last batch: what the reducer's `final()` returned, when it held something back (see reducer). */
  | { type: 'derived'; derived: unknown };

export interface LoopControl {
  stopped(): boolean;
  /** Resolves when not paused. */
  waitWhilePaused(): Promise<void>;
}

export const NO_CONTROL: LoopControl = { stopped: () => false, waitWhilePaused: async () => {} };

/**
 * Incremental detokenisation in constant time per token (transformers' TextStreamer scheme): decode a short window
 * of recent tokens, emit what it adds, and hold text back while it ends in an incomplete UTF-8 character.
 * Windows are decoded raw: the tokenizer's clean-up (a space removed before "," or "'m") changes a window's length
 * depending on where it starts, which lost characters ("'essage" for "'message"). The clean-up is applied to the
 * raw stream instead, holding back the text from a space that a rule could still reach, so the pieces add up to
 * decoding the whole sequence at once; `flush` gives the rest at the end.
 */
export class TextStream {
  private readonly ids: number[] = [];
  private prefix = 0;
  private read = 0;
  /** Raw text not given out yet: the clean-up may still delete a space in it. */
  private held = '';
  constructor(private readonly codec: TextCodec) {}

  push(id: number): string {
    this.ids.push(id);
    const before = this.codec.decodeRaw(this.ids.slice(this.prefix, this.read));
    const now = this.codec.decodeRaw(this.ids.slice(this.prefix));
    if (now.length <= before.length || now.endsWith('\uFFFD')) return '';
    this.prefix = this.read;
    this.read = this.ids.length;
    return this.release(now.slice(before.length));
  }

  /** The text still held back, at the end of the sequence (an incomplete UTF-8 character comes out as U+FFFD). */
  flush(): string {
    const before = this.codec.decodeRaw(this.ids.slice(this.prefix, this.read));
    const now = this.codec.decodeRaw(this.ids.slice(this.prefix));
    const rest = this.held + (now.length > before.length ? now.slice(before.length) : '');
    this.held = '';
    this.prefix = this.read = this.ids.length;
    return this.codec.cleanUp ? this.codec.cleanUp(rest) : rest;
  }

  private release(raw: string): string {
    const clean = this.codec.cleanUp;
    if (!clean) return raw;
    const text = this.held + raw;
    const cut = cleanCut(text);
    this.held = text.slice(cut);
    return clean(text.slice(0, cut));
  }
}

/**
 * The longest prefix of `text` that cleans up the same alone as followed by anything: no space in its last
 * CLEAN_UP_REACH characters is one a rule could start at (followed by nothing yet, or by a character a rule
 * continues with). Rules only delete spaces and each starts at one, so cleaning the prefix and the rest apart
 * gives the same text as cleaning them together; a space further back has the whole reach of a rule after it.
 */
function cleanCut(text: string): number {
  let c = text.length;
  search: while (c > 0) {
    for (let s = c - 1; s >= Math.max(0, c - CLEAN_UP_REACH); s--) {
      if (text[s] === ' ' && (s + 1 >= c || CLEAN_UP_OPENERS.has(text[s + 1]!))) {
        c = s;
        continue search;
      }
    }
    return c;
  }
  return 0;
}

/** Wall-clock time in ns since the Unix epoch. */
export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/** mulberry32: small, fast, seedable — the same seed gives the same samples. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Greedy argmax (first maximum) at temperature 0, else a sample from softmax(logits / T). */
/** Scratch for sampleToken's weights, reused across tokens (a vocabulary of 150k is 1.2 MB per token otherwise). */
let sampleScratch = new Float64Array(0);

export function sampleToken(logits: Float32Array, temperature: number, rand: () => number): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (!(temperature > 0)) return best;
  const max = logits[best]!;
  let sum = 0;
  if (sampleScratch.length < logits.length) sampleScratch = new Float64Array(logits.length);
  const p = sampleScratch;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp((logits[i]! - max) / temperature);
  let r = rand() * sum;
  for (let i = 0; i < logits.length; i++) {
    r -= p[i]!;
    if (r <= 0) return i;
  }
  return best;
}

/**
 * The RoutingBatch of `rows` (already laid out like the batch columns): built directly, one allocation per
 * column, float16 through src/core/f16. Token i has id ids[i] and position firstPos + i.
 */
export function batchFromRows(
  rows: RoutingRows,
  seq: number,
  firstPos: number,
  ids: number[],
  isPrompt: boolean,
  tag: string | null,
  codec: TextCodec,
): RoutingBatch {
  const n = rows.n;
  const pos = new Uint32Array(n);
  for (let t = 0; t < n; t++) pos[t] = firstPos + t;
  return {
    length: n,
    seq: new Uint32Array(n).fill(seq),
    pos,
    tokenId: Int32Array.from(ids.slice(0, n)),
    token: ids.slice(0, n).map((id) => codec.tokenText(id)),
    isPrompt: new Uint8Array(n).fill(isPrompt ? 1 : 0),
    tNs: new BigInt64Array(n).fill(nowNs()),
    experts: Uint16Array.from(rows.experts),
    weights: encodeF16(rows.weights),
    logits: rows.logits ? encodeF16(rows.logits) : null,
    tag: tag === null ? null : new Array<string | null>(n).fill(tag),
  };
}

export async function runGeneration(
  runner: ModelRunner,
  opts: GenerateOptions,
  emit: (e: GenerationEvent) => void,
  control: LoopControl = NO_CONTROL,
): Promise<SequenceResult[]> {
  if (opts.prompts.length === 0) throw new UserError('no prompts to run.');
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0)
    throw new UserError(`max tokens must be a non-negative integer, got ${opts.maxTokens}.`);
  const rand = seededRandom(opts.seed ?? 0);
  const temperature = opts.temperature ?? 0;
  const stopAtEos = opts.stopAtEos ?? true;
  const codec = runner.codec;
  const results: SequenceResult[] = [];
  const encoded = opts.prompts.map((p) => {
    const ids = p.ids ?? codec.encode(p.text ?? '');
    if (ids.length === 0) throw new UserError(`prompt ${JSON.stringify((p.text ?? '').slice(0, 40))} has no tokens.`);
    return { ids, text: p.text ?? codec.decode(ids), tag: p.tag ?? null };
  });
  let seq = opts.firstSeq ?? 0;

  const toBatch = (
    rows: RoutingRows,
    s: number,
    firstPos: number,
    ids: number[],
    isPrompt: boolean,
    tag: string | null,
  ) => batchFromRows(rows, s, firstPos, ids, isPrompt, tag, codec);

  const B = opts.batch ?? 1;
  if (!Number.isInteger(B) || B < 1 || B > 1024)
    throw new UserError(`batch must be an integer 1…1024, got ${opts.batch}.`);
  if (B > 1) {
    do {
      for (let at = 0; at < encoded.length; at += B) {
        await control.waitWhilePaused();
        if (control.stopped()) return results;
        const group = encoded.slice(at, at + B);
        const seqs = group.map(() => seq++);
        const done = await runGroup(runner, group, seqs, opts, temperature, stopAtEos, rand, emit, control, toBatch);
        if (!opts.loop) results.push(...done);
        if (done.some((r) => r.stop === 'stopped')) return results;
      }
    } while (opts.loop && !control.stopped());
    return results;
  }

  do {
    for (const p of encoded) {
      await control.waitWhilePaused();
      if (control.stopped()) return results;
      const s = seq++;
      emit({ type: 'sequence-start', seq: s, tag: p.tag, prompt: p.text, promptIds: p.ids });
      const st = runner.newSequence();
      let t0 = performance.now();
      let out = await runner.forward(st, p.ids);
      const promptMs = performance.now() - t0;
      if (out.rows) emit({ type: 'batch', batch: toBatch(out.rows, s, 0, p.ids, true, p.tag) });
      const generated: number[] = [];
      let text = '';
      const stream = new TextStream(codec);
      let stop: StopReason = 'max-tokens';
      let decodeMs = 0;
      while (generated.length < opts.maxTokens) {
        await control.waitWhilePaused();
        if (control.stopped()) {
          stop = 'stopped';
          break;
        }
        const next = sampleToken(out.logits, temperature, rand);
        generated.push(next);
        const delta = stream.push(next);
        text += delta;
        emit({ type: 'text', seq: s, tokenId: next, delta });
        t0 = performance.now();
        out = await runner.forward(st, [next]);
        decodeMs += performance.now() - t0;
        if (out.rows) emit({ type: 'batch', batch: toBatch(out.rows, s, st.ids.length - 1, [next], false, p.tag) });
        if (stopAtEos && codec.eos.has(next)) {
          stop = 'eos';
          break;
        }
      }
      const held = stream.flush();
      if (held) {
        text += held;
        emit({ type: 'text', seq: s, tokenId: generated[generated.length - 1]!, delta: held });
      }
      const rest = codec.decode(generated);
      if (rest.startsWith(text) && rest.length > text.length) {
        // bytes held back at the end (an incomplete UTF-8 character): the last token's text event carries them
        const tail = rest.slice(text.length);
        text = rest;
        emit({ type: 'text', seq: s, tokenId: generated[generated.length - 1]!, delta: tail });
      }
      const result: SequenceResult = {
        seq: s,
        tag: p.tag,
        prompt: p.text,
        promptIds: p.ids,
        generatedIds: generated,
        text,
        stop,
        promptMs,
        decodeMs,
      };
      if (!opts.loop) results.push(result); // the live demo loops forever: keep nothing
      emit({ type: 'sequence-end', result });
      if (stop === 'stopped') return results;
    }
  } while (opts.loop && !control.stopped());
  return results;
}

/** One group of sequences decoded together (see GenerateOptions.batch); events per sequence, in order, at the end. */
async function runGroup(
  runner: ModelRunner,
  group: { ids: number[]; text: string; tag: string | null }[],
  seqs: number[],
  opts: GenerateOptions,
  temperature: number,
  stopAtEos: boolean,
  rand: () => number,
  emit: (e: GenerationEvent) => void,
  control: LoopControl,
  toBatch: (
    rows: RoutingRows,
    s: number,
    firstPos: number,
    ids: number[],
    isPrompt: boolean,
    tag: string | null,
  ) => RoutingBatch,
): Promise<SequenceResult[]> {
  const codec = runner.codec;
  const n = group.length;
  const events: GenerationEvent[][] = group.map((p, b) => [
    { type: 'sequence-start', seq: seqs[b]!, tag: p.tag, prompt: p.text, promptIds: p.ids },
  ]);
  const st = runner.newBatch(n);
  let t0 = performance.now();
  let outs = await runner.forwardBatch(
    st,
    group.map((p) => p.ids),
  );
  const promptMs = performance.now() - t0;
  outs.forEach((o, b) => {
    if (o.rows)
      events[b]!.push({ type: 'batch', batch: toBatch(o.rows, seqs[b]!, 0, group[b]!.ids, true, group[b]!.tag) });
  });
  const generated: number[][] = group.map(() => []);
  const texts = group.map(() => '');
  const streams = group.map(() => new TextStream(codec));
  const stop: (StopReason | null)[] = group.map(() => null);
  let decodeMs = 0;
  for (let step = 0; step < opts.maxTokens && stop.some((x) => x === null); step++) {
    await control.waitWhilePaused();
    if (control.stopped()) {
      stop.forEach((x, b) => (stop[b] = x ?? 'stopped'));
      break;
    }
    // A finished sequence keeps its place in the batch (fed its last token again); its rows are dropped.
    const next = outs.map((o, b) =>
      stop[b] === null ? sampleToken(o.logits, temperature, rand) : st.ids[b]![st.ids[b]!.length - 1]!,
    );
    next.forEach((id, b) => {
      if (stop[b] !== null) return;
      generated[b]!.push(id);
      const delta = streams[b]!.push(id);
      texts[b] += delta;
      events[b]!.push({ type: 'text', seq: seqs[b]!, tokenId: id, delta });
    });
    t0 = performance.now();
    outs = await runner.forwardBatch(
      st,
      next.map((id) => [id]),
    );
    decodeMs += performance.now() - t0;
    outs.forEach((o, b) => {
      if (stop[b] !== null) return;
      if (o.rows)
        events[b]!.push({
          type: 'batch',
          batch: toBatch(o.rows, seqs[b]!, st.ids[b]!.length - 1, [next[b]!], false, group[b]!.tag),
        });
      if (stopAtEos && codec.eos.has(next[b]!)) stop[b] = 'eos';
    });
  }
  const results: SequenceResult[] = [];
  group.forEach((p, b) => {
    const rest = codec.decode(generated[b]!);
    if (rest.startsWith(texts[b]!) && rest.length > texts[b]!.length) {
      events[b]!.push({
        type: 'text',
        seq: seqs[b]!,
        tokenId: generated[b]![generated[b]!.length - 1]!,
        delta: rest.slice(texts[b]!.length),
      });
      texts[b] = rest;
    }
    const result: SequenceResult = {
      seq: seqs[b]!,
      tag: p.tag,
      prompt: p.text,
      promptIds: p.ids,
      generatedIds: generated[b]!,
      text: texts[b]!,
      stop: stop[b] ?? 'max-tokens',
      promptMs: promptMs / n,
      decodeMs: decodeMs / n,
    };
    events[b]!.push({ type: 'sequence-end', result });
    for (const e of events[b]!) emit(e);
    results.push(result);
  });
  return results;
}
