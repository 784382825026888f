/**
 * Debian control-file stanzas (deb822: dpkg's status database, status.d entries) and the
 * similar "Key: value" headers of Python's METADATA/PKG-INFO (RFC 822 style).
 *
 * A stanza is a run of lines up to a blank line; a line starting with a space or tab
 * continues the previous field. Only the fields asked for are kept, so the long
 * Description and Conffiles fields cost nothing but a scan.
 */
export function parseStanzas(text: string, wanted: ReadonlySet<string>): Map<string, string>[] {
  const stanzas: Map<string, string>[] = [];
  let current = new Map<string, string>();
  let field: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current.size > 0) stanzas.push(current);
      current = new Map();
      field = undefined;
      continue;
    }
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      if (field !== undefined) current.set(field, `${current.get(field)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      field = undefined;
      continue;
    }
    const name = line.slice(0, colon);
    field = wanted.has(name) ? name : undefined;
    if (field !== undefined && !current.has(field)) current.set(field, line.slice(colon + 1).trim());
  }
  if (current.size > 0) stanzas.push(current);
  return stanzas;
}

/** The header part of an RFC 822 message (up to the first blank line): Python's METADATA. */
export function parseHeaders(text: string, wanted: ReadonlySet<string>): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  let last: string[] | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') break;
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      if (last !== undefined) last[last.length - 1] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      last = undefined;
      continue;
    }
    const name = line.slice(0, colon).trim();
    if (!wanted.has(name)) {
      last = undefined;
      continue;
    }
    const values = headers.get(name) ?? [];
    values.push(line.slice(colon + 1).trim());
    headers.set(name, values);
    last = values;
  }
  return headers;
}
