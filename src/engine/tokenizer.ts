/**
 * Text ↔ token ids through @huggingface/tokenizers and a local tokenizer.json (beside the model, or --tokenizer).
 * Without one, token ids still work (`--input-ids`) and tokens show as `<id>`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError, describeError } from '../core/errors.js';

export interface TextCodec {
  /** Path of tokenizer.json, or null when ids are shown as `<id>`. */
  readonly path: string | null;
  encode(text: string): number[];
  /** The text of `ids` as a whole, as the tokenizer decodes it (with its clean-up of spaces, when it has one). */
  decode(ids: number[]): string;
  /** The same without the clean-up, for decoding a stream piece by piece (src/engine/generation-loop.ts). */
  decodeRaw(ids: number[]): string;
  /** The clean-up `decode` applies to the raw text, or null when it applies none. */
  readonly cleanUp: ((raw: string) => string) | null;
  /** Display text of one token. */
  tokenText(id: number): string;
  /** End-of-sequence token ids (special tokens such as <|endoftext|>, </s>, <eos>). */
  readonly eos: ReadonlySet<number>;
}

/**
 * transformers' `clean_up_tokenization` (what @huggingface/tokenizers applies unless the tokenizer config says
 * `clean_up_tokenization_spaces: false`; the library does not export it): each rule, in this order over the whole
 * text, removes the space before punctuation or an English contraction (" ' " loses both spaces).
 */
const CLEAN_UP: readonly [string, string][] = [
  [' .', '.'],
  [' ?', '?'],
  [' !', '!'],
  [' ,', ','],
  [" ' ", "'"],
  [" n't", "n't"],
  [" 'm", "'m"],
  [" 's", "'s"],
  [" 've", "'ve"],
  [" 're", "'re"],
];
/** Every rule starts at a space and reaches at most this many characters past it. */
export const CLEAN_UP_REACH = Math.max(...CLEAN_UP.map(([from]) => from.length - 1));
/** Characters that can follow the space a rule starts at (a space too: deleting it brings the next one up). */
export const CLEAN_UP_OPENERS: ReadonlySet<string> = new Set([' ', ...CLEAN_UP.map(([from]) => from[1]!)]);

function cleanUpTokenization(raw: string): string {
  let s = raw;
  for (const [from, to] of CLEAN_UP) s = s.replaceAll(from, to);
  return s;
}

const EOS_TOKENS =
  /^(<\|endoftext\|>|<\/s>|<eos>|<\|end_of_text\|>|<\|im_end\|>|<\|eot_id\|>|<\|end\|>|<｜end▁of▁sentence｜>)$/;

/** tokenizer.json next to the model, or the explicit file; null when neither exists and none was asked for. */
export function findTokenizer(modelPath: string, explicit: string | null | undefined): string | null {
  if (explicit) {
    if (!existsSync(explicit)) throw new UserError(`tokenizer not found: ${explicit}`);
    return explicit;
  }
  const beside = join(dirname(modelPath), 'tokenizer.json');
  return existsSync(beside) ? beside : null;
}

export async function loadTextCodec(path: string | null): Promise<TextCodec> {
  if (!path) return idCodec();
  let json: { added_tokens?: { id: number; content: string; special?: boolean }[] };
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read tokenizer ${path}: ${describeError(e)}`);
  }
  const cfgPath = join(dirname(path), 'tokenizer_config.json');
  let config: Record<string, unknown> = {};
  if (existsSync(cfgPath)) {
    try {
      config = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch {
      config = {};
    }
  }
  const { Tokenizer } = await import('@huggingface/tokenizers');
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new UserError(`cannot load tokenizer ${path}: ${describeError(e)}`);
  }
  const eos = new Set<number>();
  for (const t of json.added_tokens ?? []) if (t.special && EOS_TOKENS.test(t.content)) eos.add(t.id);
  const cfgEos = typeof config.eos_token === 'string' ? tok.token_to_id(config.eos_token) : undefined;
  if (cfgEos !== undefined) eos.add(cfgEos);
  const cache = new Map<number, string>();
  return {
    path,
    encode: (text) => tok.encode(text).ids,
    decode: (ids) => (ids.length ? tok.decode(ids) : ''),
    decodeRaw: (ids) => (ids.length ? tok.decode(ids, { clean_up_tokenization_spaces: false }) : ''),
    cleanUp: config.clean_up_tokenization_spaces === false ? null : cleanUpTokenization,
    tokenText: (id: number): string => {
      const hit = cache.get(id);
      if (hit !== undefined) return hit;
      const s: string = String(tok.decode([id]));
      cache.set(id, s);
      return s;
    },
    eos,
  };
}

function idCodec(): TextCodec {
  return {
    path: null,
    encode: () => {
      throw new UserError(
        'no tokenizer: put tokenizer.json beside the model, pass --tokenizer FILE, or give token ids with --input-ids.',
      );
    },
    decode: (ids) => ids.map((i) => `<${i}>`).join(''),
    decodeRaw: (ids) => ids.map((i) => `<${i}>`).join(''),
    cleanUp: null,
    tokenText: (id) => `<${id}>`,
    eos: new Set(),
  };
}
