/**
 * Debian version comparison, exactly as dpkg does it (deb-version(7), lib/dpkg/version.c).
 *
 * A version is `[epoch:]upstream[-revision]`: the epoch is the digits before the first colon
 * (0 when absent), the revision is everything after the LAST hyphen ("" when absent, which
 * compares equal to "0"). Epochs compare numerically; upstream and revision compare with the
 * same string rule: alternately a run of non-digits, compared character by character where
 * `~` sorts before everything (even the end of the string), then letters, then every other
 * character; and a run of digits, compared numerically (leading zeros ignored, any length).
 *
 * Comparison is lenient like `dpkg --compare-versions` with a syntactically odd version: it
 * never throws, it orders whatever it is given by the rule above.
 */

export interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

export function parseDebianVersion(version: string): DebianVersion {
  const text = version.trim();
  const colon = text.indexOf(':');
  let epoch = 0;
  let rest = text;
  if (colon > 0 && /^\d+$/.test(text.slice(0, colon))) {
    epoch = Number(text.slice(0, colon));
    rest = text.slice(colon + 1);
  }
  const hyphen = rest.lastIndexOf('-');
  if (hyphen < 0) return { epoch, upstream: rest, revision: '' };
  return { epoch, upstream: rest.slice(0, hyphen), revision: rest.slice(hyphen + 1) };
}

const CODE_0 = 48;
const CODE_9 = 57;
const TILDE = 126;

function isDigit(code: number): boolean {
  return code >= CODE_0 && code <= CODE_9;
}

function isLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** dpkg's `order()`: the weight of one character in a non-digit run; NaN (end) weighs 0. */
function weight(code: number): number {
  if (Number.isNaN(code) || isDigit(code)) return 0;
  if (isLetter(code)) return code;
  if (code === TILDE) return -1;
  return code + 256;
}

/** dpkg's `verrevcmp()` over one part (upstream or revision). */
export function compareVersionPart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit run: character by character.
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const wa = weight(a.charCodeAt(i));
      const wb = weight(b.charCodeAt(j));
      if (wa !== wb) return wa < wb ? -1 : 1;
      i++;
      j++;
    }
    // Digit run: numerically, by skipping leading zeros and then comparing length, then digits.
    while (a.charCodeAt(i) === CODE_0) i++;
    while (b.charCodeAt(j) === CODE_0) j++;
    let firstDiff = 0;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a.charCodeAt(i))) return 1;
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff < 0 ? -1 : 1;
  }
  return 0;
}

/** The same comparison over versions parsed once (matching compares one version many times). */
export function compareParsedDebianVersions(va: DebianVersion, vb: DebianVersion): number {
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  return compareVersionPart(va.upstream, vb.upstream) || compareVersionPart(va.revision, vb.revision);
}

/** -1, 0 or 1 as `a` is older than, the same as, or newer than `b`. */
export function compareDebianVersions(a: string, b: string): number {
  if (a === b) return 0;
  return compareParsedDebianVersions(parseDebianVersion(a), parseDebianVersion(b));
}
