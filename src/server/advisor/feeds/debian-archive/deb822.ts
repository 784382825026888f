/**
 * Debian control-file paragraphs (deb822: Packages, Sources, Release): `Field: value` lines,
 * continuation lines starting with a space or tab, paragraphs separated by blank lines.
 * Field names are case-insensitive; they are returned as written in the first paragraph seen,
 * looked up through `field()`.
 */

export type Paragraph = Map<string, string>;

/** Yields each paragraph with its field names lower-cased. */
export function* parseDeb822(text: string): Generator<Paragraph> {
  let paragraph: Paragraph = new Map();
  let last: string | undefined;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).replace(/\r$/, '');
    start = end + 1;
    if (line.trim() === '') {
      if (paragraph.size > 0) yield paragraph;
      paragraph = new Map();
      last = undefined;
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (last !== undefined) paragraph.set(last, `${paragraph.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).toLowerCase();
    paragraph.set(last, line.slice(colon + 1).trim());
  }
  if (paragraph.size > 0) yield paragraph;
}
