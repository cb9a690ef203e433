/**
 * Streamed text (`run --no-ui`, the TUI's generated text) adds up to the bundled tokenizer decoding the whole
 * sequence at once (@huggingface/tokenizers' own decode, clean-up of spaces included): it lost characters where
 * the clean-up shortened a decoded window ("'essage" for "'message").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { TextStream } from '../../src/engine/generation-loop.js';
import { loadTextCodec, type TextCodec } from '../../src/engine/tokenizer.js';

const TOKENIZER = join(PACKAGE_ROOT, 'fixtures/models/tiny-moe/tokenizer.json');

function streamed(codec: TextCodec, ids: number[]): { pieces: string[]; text: string } {
  const s = new TextStream(codec);
  const pieces = ids.map((id) => s.push(id));
  pieces.push(s.flush());
  return { pieces, text: pieces.join('') };
}

test('streamed pieces of text the clean-up touches add up to the whole decode', async () => {
  const codec = await loadTextCodec(TOKENIZER);
  for (const text of [
    "Say 'message' to me",
    "Hello , world ! I 'm here . Are you ? We 're , they 've , it 's — don't , can n't",
    "a ' b ' c  .  , !",
    'naïve café 日本語 🙂 — ends with a space ',
  ]) {
    const ids = codec.encode(text);
    const whole = codec.decode(ids);
    assert.equal(streamed(codec, ids).text, whole, JSON.stringify(text));
  }
  // Text goes out as it comes: only a space that clean-up could still remove is held back.
  const words = streamed(codec, codec.encode('1 2 3 the cat sat on the mat'));
  assert.equal(words.pieces.at(-1), '');
  // The case, token by token: nothing of 'message' is dropped.
  assert.match(streamed(codec, codec.encode("say 'message'")).text, /'message'/);
});

test('random token sequences (seeded) stream to the whole decode, no piece lost or repeated', async () => {
  const codec = await loadTextCodec(TOKENIZER);
  // Ids whose text is punctuation, a contraction or starts with a space are where windows and clean-up meet.
  const probe = codec.encode(" , . ! ? ' 'm 's 've 're n't the a message  I you");
  let seed = 7;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let r = 0; r < 300; r++) {
    const ids = Array.from({ length: 1 + Math.floor(rand() * 40) }, () =>
      rand() < 0.5 ? probe[Math.floor(rand() * probe.length)]! : Math.floor(rand() * 1000),
    );
    assert.equal(streamed(codec, ids).text, codec.decode(ids), `ids ${ids.join(',')}`);
  }
});
