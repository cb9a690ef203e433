/**
 * A strict little XML 1.0 reader for tests: checks well-formedness (one root, balanced and properly nested tags,
 * quoted unique attributes, only the predefined or numeric entities, no stray '<' or '&') and returns the tree.
 * Enough to validate the JUnit report without an XML package.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*/;

function decodeEntities(s: string, where: number): string {
  return s.replace(/&([^;]*);?/g, (m, body: string) => {
    if (!m.endsWith(';')) throw new Error(`unterminated entity at ${where}`);
    switch (body) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const num = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(body);
    if (!num) throw new Error(`unknown entity &${body}; at ${where}`);
    return String.fromCodePoint(body[1] === 'x' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10));
  });
}

export function parseXml(src: string): XmlElement {
  let i = 0;
  if (src.startsWith('<?xml')) {
    const end = src.indexOf('?>');
    if (end < 0) throw new Error('unterminated XML declaration');
    if (
      !/^<\?xml version="1\.[0-9]"( encoding="[A-Za-z0-9._-]+")?( standalone="(yes|no)")?\s*\?>$/.test(
        src.slice(0, end + 2),
      )
    )
      throw new Error(`bad XML declaration: ${src.slice(0, end + 2)}`);
    i = end + 2;
  }
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const skipWs = () => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  while (i < src.length) {
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i);
      if (end < 0) throw new Error('unterminated comment');
      i = end + 3;
      continue;
    }
    if (src[i] === '<') {
      if (src[i + 1] === '/') {
        i += 2;
        const m = NAME.exec(src.slice(i));
        if (!m) throw new Error(`bad closing tag at ${i}`);
        i += m[0].length;
        skipWs();
        if (src[i] !== '>') throw new Error(`bad closing tag at ${i}`);
        i++;
        const open = stack.pop();
        if (!open || open.name !== m[0])
          throw new Error(`</${m[0]}> does not close <${open?.name ?? '(nothing)'}> at ${i}`);
        continue;
      }
      i++;
      const m = NAME.exec(src.slice(i));
      if (!m) throw new Error(`bad tag name at ${i}`);
      i += m[0].length;
      const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '' };
      for (;;) {
        const before = i;
        skipWs();
        if (src.startsWith('/>', i) || src[i] === '>') break;
        if (i === before) throw new Error(`attributes must be separated by space at ${i}`);
        const a = NAME.exec(src.slice(i));
        if (!a) throw new Error(`bad attribute at ${i}`);
        i += a[0].length;
        if (src[i] !== '=') throw new Error(`attribute ${a[0]} without value at ${i}`);
        i++;
        const q = src[i];
        if (q !== '"' && q !== "'") throw new Error(`unquoted attribute ${a[0]} at ${i}`);
        const end = src.indexOf(q, i + 1);
        if (end < 0) throw new Error(`unterminated attribute ${a[0]}`);
        const raw = src.slice(i + 1, end);
        if (raw.includes('<')) throw new Error(`'<' in attribute ${a[0]}`);
        if (a[0] in el.attrs) throw new Error(`duplicate attribute ${a[0]} on <${el.name}>`);
        el.attrs[a[0]] = decodeEntities(raw, i);
        i = end + 1;
      }
      const selfClosing = src.startsWith('/>', i);
      i += selfClosing ? 2 : 1;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw new Error(`second root element <${el.name}>`);
      else root = el;
      if (!selfClosing) stack.push(el);
      continue;
    }
    const next = src.indexOf('<', i);
    const text = src.slice(i, next < 0 ? src.length : next);
    const top = stack[stack.length - 1];
    if (!top) {
      if (text.trim() !== '') throw new Error(`text outside the root element at ${i}`);
    } else {
      if (text.includes('>') && text.includes(']]>')) throw new Error(`']]>' in text at ${i}`);
      top.text += decodeEntities(text, i);
    }
    i = next < 0 ? src.length : next;
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
