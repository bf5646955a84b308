// The little XML rcpp2p reads from a router (a UPnP device description, a SOAP answer): flat
// elements found by name, their text with the five predefined entities and character references
// decoded. Not a general XML parser: the callers bound the input size first and only look for
// elements whose text has no markup inside. No regular expression here can backtrack badly: every
// pattern is anchored on literal tags and excludes '<' from what it skips.

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Element text with entities decoded; undefined when an entity is unknown or malformed. */
export function xmlText(raw: string): string | undefined {
  let bad = false;
  const text = raw.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-z]{2,4});/g, (_m, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (code > 0x10ffff || code === 0) {
        bad = true;
        return '';
      }
      return String.fromCodePoint(code);
    }
    const value = ENTITIES[ref];
    if (value === undefined) bad = true;
    return value ?? '';
  });
  if (bad || /&(?!#x[0-9a-fA-F]{1,6};|#\d{1,7};|[a-z]{2,4};)/.test(raw)) return undefined;
  return text.trim();
}

/**
 * The text of every `<name>…</name>` (any namespace prefix, attributes allowed) directly holding
 * text, in document order, at most `max` of them.
 */
export function elementTexts(xml: string, name: string, max: number): string[] {
  const pattern = new RegExp(
    `<(?:[A-Za-z_][\\w.-]*:)?${name}(?:\\s[^<>]*)?>([^<]*)</(?:[A-Za-z_][\\w.-]*:)?${name}\\s*>`,
    'g',
  );
  const found: string[] = [];
  for (const m of xml.matchAll(pattern)) {
    const text = xmlText(m[1] ?? '');
    if (text !== undefined) found.push(text);
    if (found.length >= max) break;
  }
  return found;
}

/** The inner markup of every `<name>…</name>` block (not nested in itself), at most `max`. */
export function elementBlocks(xml: string, name: string, max: number): string[] {
  const prefix = '(?:[A-Za-z_][\\w.-]*:)?';
  const open = new RegExp(`<${prefix}${name}(?:\\s[^<>]*)?>`, 'g');
  const close = new RegExp(`</${prefix}${name}\\s*>`, 'g');
  const blocks: string[] = [];
  // One pass forward: each search starts where the last one ended, so the work stays linear.
  while (blocks.length < max) {
    const start = open.exec(xml);
    if (!start) break;
    close.lastIndex = open.lastIndex;
    const end = close.exec(xml);
    if (!end) break;
    blocks.push(xml.slice(open.lastIndex, end.index));
    open.lastIndex = close.lastIndex;
  }
  return blocks;
}

/** Escapes text for an element body. */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' }[c] ?? ''};`,
  );
}
