/**
 * Debian changelogs (debian/changelog, shipped as /usr/share/doc/<pkg>/changelog.Debian.gz):
 *
 *     openssl (3.0.15-1~deb12u1) bookworm-security; urgency=medium
 *
 *       * New upstream release (CVE-2024-5535, CVE-2024-9143).
 *
 *      -- Maintainer <m@example.org>  Sun, 27 Oct 2024 12:00:00 +0100
 *
 * Entries are newest first. Parsing stops at the markers dpkg-parsechangelog stops at
 * ("Old Changelog:", "Local variables:"), after which the text is free-form.
 */

export interface ChangelogEntry {
  source: string;
  version: string;
  distributions: string[];
  /** `urgency=` value lower-cased, without comments ("medium"). */
  urgency: string;
  /** The body lines between the header and the trailer, leading two spaces removed. */
  text: string;
}

const HEADER = /^([a-z0-9][a-z0-9+.-]*) \(([^()\s]+)\)((?:\s+[a-z0-9][a-z0-9+./-]*)+)\s*;(.*)$/i;
const END_MARKER = /^(?:Old Changelog:|Local variables:|# Local variables:)/i;

export function parseDebianChangelog(text: string): ChangelogEntry[] {
  const entries: ChangelogEntry[] = [];
  let body: string[] = [];
  const close = (): void => {
    const last = entries[entries.length - 1];
    if (last !== undefined) last.text = body.join('\n').trim();
    body = [];
  };
  for (const line of text.split('\n')) {
    if (END_MARKER.test(line)) break;
    const header = HEADER.exec(line);
    if (header !== null) {
      close();
      const urgency = /urgency=([a-z]+)/i.exec(header[4] ?? '')?.[1]?.toLowerCase() ?? 'unknown';
      entries.push({
        source: header[1]!,
        version: header[2]!,
        distributions: header[3]!.trim().split(/\s+/),
        urgency,
        text: '',
      });
      continue;
    }
    if (line.startsWith(' -- ')) continue;
    if (entries.length > 0) body.push(line.replace(/^ {2}/, ''));
  }
  close();
  return entries;
}

const CVE_ID = /CVE-\d{4}-\d{4,}/g;

/** The CVE ids an entry mentions, each once, in order of first mention. */
export function cvesMentioned(text: string): string[] {
  return [...new Set(text.match(CVE_ID) ?? [])];
}

/** The line of an entry's text that first mentions `cve`, as a one-line summary. */
export function lineMentioning(text: string, cve: string): string | undefined {
  const lines = text.split('\n');
  const index = lines.findIndex((l) => l.includes(cve));
  if (index < 0) return undefined;
  // Join a wrapped bullet's continuation lines, up to the next bullet or blank line.
  const parts = [lines[index]!.trim()];
  for (let i = index + 1; i < lines.length; i++) {
    const next = lines[i]!.trim();
    if (next === '' || /^[*+-] /.test(next) || next.startsWith('[')) break;
    parts.push(next);
  }
  return parts.join(' ').replace(/^[*+-]\s+/, '');
}
