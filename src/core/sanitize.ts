/**
 * The one gate between data and the terminal. Model names, tags, prompts, tokens, device names and file contents
 * come from files a user did not write; printed raw, an ESC or a C1 CSI (U+009B) starts an escape sequence (set the
 * window title, rewrite the screen, hide text), a carriage return overprints a line, and a bidi override (U+202E)
 * reorders what is shown (Trojan Source). Every text that reaches a terminal goes through one of these functions:
 * unsafe characters are shown as visible escapes (`\x1b`, `\u202e`) rather than dropped, so a user sees that
 * something odd is in the data.
 *
 * - `sanitizeText`: multi-line output (stats, check text / markdown, --no-ui text); keeps `\n` and `\t`.
 * - `sanitizeLine`: one field on one line (TUI headers, tags, table cells, error messages); escapes `\n` and `\t` too.
 * - `sanitizeJson`: JSON text; JSON.stringify already escapes C0, this escapes C1 and the bidi controls as `\uXXXX`
 *   (they can only occur inside strings, so the JSON means the same).
 * - `oneLine`: an error message for stderr: sanitised, on one line, at most `max` characters (the middle cut).
 * - `quoteValue`: an offending value quoted in a message, cut to ≤ 80 characters with an ellipsis.
 */

/** C0 controls but TAB and LF, DEL, C1 controls, ALM, LRM/RLM, the embeddings/overrides and the isolates. */
const UNSAFE_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** The same plus TAB and LF (one field on one line) and the Unicode line / paragraph separators. */
const UNSAFE_LINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves raw but a terminal acts on: C1 controls, bidi controls, line separators. */
const UNSAFE_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(ch: string): string {
  const c = ch.charCodeAt(0);
  if (c === 0x0a) return '\\n';
  if (c === 0x09) return '\\t';
  if (c === 0x0d) return '\\r';
  return c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
}

function jsonEscape(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** Multi-line text for a terminal: every control but newline and tab, and every bidi control, made visible. */
export function sanitizeText(s: string): string {
  UNSAFE_TEXT.lastIndex = 0;
  return UNSAFE_TEXT.test(s) ? s.replace(UNSAFE_TEXT, visible) : s;
}

/** One field on one line: as sanitizeText, and newlines / tabs shown as `\n` / `\t`. */
export function sanitizeLine(s: string): string {
  UNSAFE_LINE.lastIndex = 0;
  return UNSAFE_LINE.test(s) ? s.replace(UNSAFE_LINE, visible) : s;
}

/** JSON text (from JSON.stringify) made terminal-safe without changing what it means. */
export function sanitizeJson(s: string): string {
  UNSAFE_JSON.lastIndex = 0;
  return UNSAFE_JSON.test(s) ? s.replace(UNSAFE_JSON, jsonEscape) : s;
}

/** Cuts `s` to at most `max` characters (code points), keeping its start and end around an ellipsis. */
export function cutMiddle(s: string, max: number): string {
  if (s.length <= max) return s;
  const cps = Array.from(s);
  if (cps.length <= max) return s;
  const keep = Math.max(1, max - 1);
  const head = Math.ceil(keep * 0.75);
  const tail = keep - head;
  return cps.slice(0, head).join('') + '…' + (tail > 0 ? cps.slice(cps.length - tail).join('') : '');
}

/** Longest error line the CLI prints (characters). */
const MAX_MESSAGE = 400;

/** An error message for stderr: one line, terminal-safe, at most `max` characters. */
export function oneLine(message: string, max = MAX_MESSAGE): string {
  return cutMiddle(sanitizeLine(message), max);
}

/** An offending value for a message: `"…"`-quoted, terminal-safe, its text cut to `max` characters. */
export function quoteValue(value: unknown, max = 80): string {
  const s = typeof value === 'string' ? value : safeStringify(value);
  const cps = Array.from(sanitizeLine(s));
  const body = cps.length > max ? cps.slice(0, max - 1).join('') + '…' : cps.join('');
  return `"${body}"`;
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Standard output of a command that prints text (not the TUI): sanitised at this one place. */
export function printText(text: string): void {
  process.stdout.write(sanitizeText(text));
}

/** Standard output of a command that prints JSON. */
export function printJson(text: string): void {
  process.stdout.write(sanitizeJson(text));
}

/** One line on stderr (`moescope: …` is added when missing). */
export function printError(message: string): void {
  const line = oneLine(message.startsWith('moescope: ') ? message.slice(10) : message);
  process.stderr.write(`moescope: ${line}\n`);
}
