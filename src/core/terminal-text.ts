/**
 * Terminal text from data: the width of a string in columns, and token text made visible and safe (no control
 * characters, no private-use characters). Below the store, which lays out token lines, and the views, which draw
 * them.
 */

/** Width of one code point in a terminal: 0 for combining and zero-width marks, 2 for East Asian wide and emoji. */
function charWidth(cp: number): number {
  if (cp === 0x200b || cp === 0x200c || cp === 0x200d || cp === 0xfeff) return 0;
  if (
    (cp >= 0x0300 && cp <= 0x036f) ||
    (cp >= 0x1ab0 && cp <= 0x1aff) ||
    (cp >= 0x20d0 && cp <= 0x20ff) ||
    (cp >= 0xfe20 && cp <= 0xfe2f)
  )
    return 0;
  if (cp >= 0xfe00 && cp <= 0xfe0f) return 0; // variation selectors
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  )
    return 2;
  return 1;
}

export function textWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/**
 * A token as shown in the stream: newlines as ↵, tabs as →, other control characters as their Unicode picture or
 * as ·, private-use characters as �, a leading space kept (it separates words), an empty token as ∅.
 */
export function visibleToken(t: string): string {
  if (t === '') return '∅';
  let out = '';
  for (const ch of t) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\n') out += '↵';
    else if (ch === '\r') out += '␍';
    else if (ch === '\t') out += '→';
    else if (cp < 0x20) out += String.fromCodePoint(0x2400 + cp);
    else if (cp === 0x7f || (cp >= 0x80 && cp < 0xa0)) out += '·';
    else if (cp >= 0xe000 && cp <= 0xf8ff) out += '�';
    else out += ch;
  }
  return out;
}
