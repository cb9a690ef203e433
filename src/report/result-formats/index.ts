/** Output formats shared by `check` and `diff`. */
import type { GateResult } from '../../gate/verdict.js';
import { formatGithub } from './github.js';
import { formatJson } from './json.js';
import { formatJunit } from './junit.js';
import { formatMarkdown } from './markdown.js';
import { formatText } from './text.js';

export const FORMATS = ['text', 'json', 'junit', 'github', 'markdown'] as const;
export type Format = (typeof FORMATS)[number];

export function formatResult(r: GateResult, format: Format): string {
  switch (format) {
    case 'text':
      return formatText(r);
    case 'json':
      return formatJson(r);
    case 'junit':
      return formatJunit(r);
    case 'github':
      return formatGithub(r);
    case 'markdown':
      return formatMarkdown(r);
  }
}
