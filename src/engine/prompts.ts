/**
 * Prompts files: JSONL lines `{"text": …, "domain": …}` (the domain becomes the tokens' `tag`) or plain text,
 * one prompt per line. Blank lines are skipped. Each prompt becomes its own sequence.
 */
import { readFileSync } from 'node:fs';
import { UserError, describeError } from '../core/errors.js';
import type { PromptSpec } from './generation-loop.js';

export function parsePrompts(text: string, label: string): PromptSpec[] {
  const out: PromptSpec[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const s = line.trim();
    if (!s) return;
    if (s.startsWith('{')) {
      let o: unknown;
      try {
        o = JSON.parse(s);
      } catch (e) {
        throw new UserError(`${label} line ${i + 1}: invalid JSON (${describeError(e)}).`);
      }
      const rec = o as { text?: unknown; domain?: unknown; tag?: unknown };
      if (typeof rec.text !== 'string' || rec.text === '')
        throw new UserError(`${label} line ${i + 1}: needs a non-empty "text" string.`);
      const tag = rec.domain ?? rec.tag ?? null;
      if (tag !== null && typeof tag !== 'string')
        throw new UserError(`${label} line ${i + 1}: "domain" must be a string.`);
      out.push({ text: rec.text, tag });
    } else out.push({ text: line, tag: null });
  });
  if (out.length === 0) throw new UserError(`${label} has no prompts.`);
  return out;
}

export function loadPrompts(path: string): PromptSpec[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(
      `cannot read prompts file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : describeError(e)}`,
    );
  }
  return parsePrompts(text, path);
}
