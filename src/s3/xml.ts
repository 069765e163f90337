/**
 * S3 XML: a tiny builder that escapes every text node, and a strict minimal parser for the few request
 * bodies S3 clients send (DeleteObjects). No DTDs, no external entities: a DOCTYPE is MalformedXML.
 */
import { S3Error } from './errors.js';

/** The S3 namespace every response root carries. */
export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** Already-rendered XML; plain strings passed to {@link el} are always escaped. */
export interface Xml {
  readonly xml: string;
}

/** Content of an element: text (escaped), numbers and booleans (as text), rendered children. */
export type XmlContent = string | number | boolean | Xml | readonly (Xml | undefined)[] | undefined | null;

/**
 * Escapes text for element content and attribute values. Control characters (and CR/LF/TAB, which
 * parsers would otherwise normalise) become numeric references, as S3 does for keys, so any key
 * round-trips through a listing.
 */
export function escapeXml(s: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | undefined;
    if (c === 0x26) rep = '&amp;';
    else if (c === 0x3c) rep = '&lt;';
    else if (c === 0x3e) rep = '&gt;';
    else if (c === 0x22) rep = '&quot;';
    else if (c === 0x27) rep = '&apos;';
    else if (c < 0x20 || c === 0x7f) rep = `&#x${c.toString(16).toUpperCase()};`;
    if (rep !== undefined) {
      out += s.slice(last, i) + rep;
      last = i + 1;
    }
  }
  return last === 0 ? s : out + s.slice(last);
}

/** One element. Empty content renders `<Name></Name>` (S3 style) unless `content` is undefined/null. */
export function el(name: string, content: XmlContent, attrs?: Record<string, string>): Xml {
  const a = attrs ? Object.entries(attrs).map(([k, v]) => ` ${k}="${escapeXml(v)}"`).join('') : '';
  if (content === undefined || content === null) return { xml: `<${name}${a}/>` };
  let inner: string;
  if (typeof content === 'string') inner = escapeXml(content);
  else if (typeof content === 'number' || typeof content === 'boolean') inner = String(content);
  else if (Array.isArray(content)) inner = (content as readonly (Xml | undefined)[]).map((c) => c?.xml ?? '').join('');
  else inner = (content as Xml).xml;
  return { xml: `<${name}${a}>${inner}</${name}>` };
}

/** Element only when `content` is defined (optional fields). */
export function opt(name: string, content: string | number | boolean | undefined): Xml | undefined {
  return content === undefined ? undefined : el(name, content);
}

/** A complete document: declaration plus the root element with the S3 namespace. */
export function xmlDocument(root: string, content: XmlContent): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${el(root, content, { xmlns: S3_XMLNS }).xml}`;
}

/** A parsed element: local name (prefix stripped), attributes, and children in document order. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: (XmlElement | string)[];
}

const NAME_RE = /^[A-Za-z_:][-A-Za-z0-9_.:]*/;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function malformed(why: string): S3Error {
  return new S3Error('MalformedXML', undefined, {}, { cause: new Error(why) });
}

/** Decodes the five predefined entities and numeric references; anything else is malformed. */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;]*);?/g, (m, body: string) => {
    if (!m.endsWith(';')) throw malformed('unterminated entity');
    if (body.startsWith('#x') || body.startsWith('#X')) return fromCodePoint(parseInt(body.slice(2), 16), body);
    if (body.startsWith('#')) return fromCodePoint(parseInt(body.slice(1), 10), body);
    const v = ENTITIES[body];
    if (v === undefined) throw malformed(`unknown entity ${body}`);
    return v;
  });
}

function fromCodePoint(cp: number, body: string): string {
  // &#0; is not well-formed in any XML version (and no key, prefix or rule can hold NUL: PostgreSQL text cannot).
  if (!/^#(x[0-9a-fA-F]+|X[0-9a-fA-F]+|[0-9]+)$/.test(body) || !Number.isFinite(cp) || cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    throw malformed(`bad character reference ${body}`);
  }
  return String.fromCodePoint(cp);
}

/**
 * Parses a small XML document into an element tree. Accepts a declaration, comments, CDATA, attributes
 * and namespace prefixes (dropped from names); rejects DOCTYPE, processing instructions after the
 * declaration, mismatched tags, text outside the root and anything else not well-formed.
 */
export function parseXml(src: string): XmlElement {
  if (src.includes('\0')) throw malformed('NUL character');
  let i = 0;
  const n = src.length;
  if (src.charCodeAt(0) === 0xfeff) i = 1;
  const skipWsAndComments = (): void => {
    for (;;) {
      while (i < n && /\s/.test(src[i]!)) i++;
      if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i + 4);
        if (end < 0) throw malformed('unterminated comment');
        i = end + 3;
      } else return;
    }
  };
  if (src.startsWith('<?xml', i)) {
    const end = src.indexOf('?>', i);
    if (end < 0) throw malformed('unterminated declaration');
    i = end + 2;
  }
  skipWsAndComments();
  if (src[i] !== '<') throw malformed('no root element');
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (i < n) {
    if (src[i] === '<') {
      if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i + 4);
        if (end < 0) throw malformed('unterminated comment');
        i = end + 3;
      } else if (src.startsWith('<![CDATA[', i)) {
        const end = src.indexOf(']]>', i);
        if (end < 0 || stack.length === 0) throw malformed('bad CDATA');
        stack[stack.length - 1]!.children.push(src.slice(i + 9, end));
        i = end + 3;
      } else if (src[i + 1] === '/') {
        const m = NAME_RE.exec(src.slice(i + 2, i + 2 + 256));
        const top = stack.pop();
        if (!m || !top) throw malformed('bad end tag');
        i += 2 + m[0].length;
        while (i < n && /\s/.test(src[i]!)) i++;
        if (src[i] !== '>' || localName(m[0]) !== top.name) throw malformed('mismatched end tag');
        i++;
        if (stack.length === 0) root = top;
      } else if (src[i + 1] === '!' || src[i + 1] === '?') {
        throw malformed('DOCTYPE or processing instruction');
      } else {
        if (root) throw malformed('second root element');
        const m = NAME_RE.exec(src.slice(i + 1, i + 1 + 256));
        if (!m) throw malformed('bad start tag');
        i += 1 + m[0].length;
        const elem: XmlElement = { name: localName(m[0]), attrs: {}, children: [] };
        for (;;) {
          const ws = i;
          while (i < n && /\s/.test(src[i]!)) i++;
          if (src[i] === '>' || src.startsWith('/>', i)) break;
          const an = NAME_RE.exec(src.slice(i, i + 256));
          if (!an || i === ws) throw malformed('bad attribute');
          i += an[0].length;
          while (i < n && /\s/.test(src[i]!)) i++;
          if (src[i] !== '=') throw malformed('attribute without value');
          i++;
          while (i < n && /\s/.test(src[i]!)) i++;
          const q = src[i];
          if (q !== '"' && q !== "'") throw malformed('unquoted attribute');
          const end = src.indexOf(q, i + 1);
          if (end < 0) throw malformed('unterminated attribute');
          const raw = src.slice(i + 1, end);
          if (raw.includes('<')) throw malformed('< in attribute');
          elem.attrs[an[0]] = decodeEntities(raw);
          i = end + 1;
        }
        if (stack.length > 0) stack[stack.length - 1]!.children.push(elem);
        if (src[i] === '/') {
          i += 2;
          if (stack.length === 0) root = elem;
        } else {
          i++;
          stack.push(elem);
        }
      }
    } else {
      const end = src.indexOf('<', i);
      const text = src.slice(i, end < 0 ? n : end);
      if (stack.length === 0) {
        if (text.trim() !== '') throw malformed('text outside the root');
      } else {
        if (text.includes(']]>')) throw malformed(']]> in text');
        stack[stack.length - 1]!.children.push(decodeEntities(text));
      }
      i = end < 0 ? n : end;
    }
  }
  if (!root || stack.length > 0) throw malformed('unclosed element');
  return root;
}

function localName(qname: string): string {
  const c = qname.indexOf(':');
  return c < 0 ? qname : qname.slice(c + 1);
}

/** The concatenated text of an element (exact, not trimmed); child elements make it malformed. */
export function textOf(e: XmlElement): string {
  let s = '';
  for (const c of e.children) {
    if (typeof c !== 'string') throw malformed(`unexpected element in ${e.name}`);
    s += c;
  }
  return s;
}

/** The element children of `e` (whitespace text between them ignored; other text is malformed). */
export function elementsOf(e: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of e.children) {
    if (typeof c === 'string') {
      if (c.trim() !== '') throw malformed(`unexpected text in ${e.name}`);
    } else out.push(c);
  }
  return out;
}

/** A parsed DeleteObjects request. */
export interface DeleteRequest {
  quiet: boolean;
  objects: { key: string; versionId?: string }[];
}

/** Parses `<Delete><Quiet/>?<Object><Key/><VersionId/>?</Object>…</Delete>`; 1–1000 objects. */
export function parseDeleteRequest(body: string): DeleteRequest {
  const root = parseXml(body);
  if (root.name !== 'Delete') throw malformed('root is not Delete');
  const out: DeleteRequest = { quiet: false, objects: [] };
  for (const child of elementsOf(root)) {
    if (child.name === 'Quiet') {
      const v = textOf(child).trim().toLowerCase();
      if (v !== 'true' && v !== 'false') throw malformed('Quiet is not a boolean');
      out.quiet = v === 'true';
    } else if (child.name === 'Object') {
      let key: string | undefined;
      let versionId: string | undefined;
      for (const f of elementsOf(child)) {
        if (f.name === 'Key') key = textOf(f);
        else if (f.name === 'VersionId') versionId = textOf(f);
        else if (f.name === 'ETag' || f.name === 'LastModifiedTime' || f.name === 'Size') {
          // Per-object conditions are not enforced yet: refused, never accepted and ignored.
          throw new S3Error('NotImplemented', `Conditional deletes (${f.name} in a DeleteObjects Object) are not implemented.`);
        } else throw malformed(`unknown field ${f.name}`);
      }
      if (key === undefined) throw malformed('Object without Key');
      out.objects.push(versionId === undefined ? { key } : { key, versionId });
    } else throw malformed(`unknown element ${child.name}`);
  }
  if (out.objects.length === 0 || out.objects.length > 1000) throw malformed('Delete must name 1 to 1000 objects');
  return out;
}
