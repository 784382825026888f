import { invalidArgument } from '../../common/errors.js';

/**
 * Words and variables in Dockerfile arguments, as Docker's shell lexer treats them.
 *
 * Two phases: `splitWords` cuts an argument string at unquoted whitespace and keeps quotes
 * and escapes in each word; `expandWord` then removes quotes and escapes and substitutes
 * variables: `$name`, `${name}`, `${name:-word}`, `${name-word}`, `${name:+word}`,
 * `${name+word}`, `${name:?message}`, `${name?message}`. Single quotes stop substitution;
 * an unset variable is empty. The escape character is `\` or the one the `escape`
 * directive chose.
 */
export type Lookup = (name: string) => string | undefined;

export function splitWords(text: string, escape: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === escape && quote !== "'" && i + 1 < text.length) {
      current += c + text[i + 1]!;
      i++;
      inWord = true;
      continue;
    }
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      current += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      current += c;
      inWord = true;
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
      continue;
    }
    current += c;
    inWord = true;
  }
  if (inWord) words.push(current);
  return words;
}

export function expandWord(word: string, lookup: Lookup, escape: string): string {
  let out = '';
  let i = 0;
  const n = word.length;
  while (i < n) {
    const c = word[i]!;
    if (c === escape) {
      if (i + 1 < n) out += word[i + 1]!;
      else out += c;
      i += 2;
    } else if (c === "'") {
      const end = word.indexOf("'", i + 1);
      if (end === -1) throw invalidArgument(`unexpected end of statement while looking for matching single-quote in: ${word}`);
      out += word.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const d = word[i]!;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === escape && i + 1 < n && ['"', '$', escape].includes(word[i + 1]!)) {
          out += word[i + 1]!;
          i += 2;
        } else if (d === '$') {
          const sub = substitute(word, i, lookup, escape);
          out += sub.value;
          i = sub.next;
        } else {
          out += d;
          i++;
        }
      }
      if (!closed) throw invalidArgument(`unexpected end of statement while looking for matching double-quote in: ${word}`);
    } else if (c === '$') {
      const sub = substitute(word, i, lookup, escape);
      out += sub.value;
      i = sub.next;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** `word[start]` is `$`: the substituted value and where the text goes on. */
function substitute(word: string, start: number, lookup: Lookup, escape: string): { value: string; next: number } {
  const rest = word.slice(start + 1);
  const simple = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest) ?? /^[0-9]/.exec(rest);
  if (simple) return { value: lookup(simple[0]) ?? '', next: start + 1 + simple[0].length };
  if (!rest.startsWith('{')) return { value: '$', next: start + 1 };
  // Find the matching brace, allowing nested ${...} in the word part.
  let depth = 0;
  let end = -1;
  for (let j = 0; j < rest.length; j++) {
    if (rest[j] === escape) {
      j++;
      continue;
    }
    if (rest[j] === '{') depth++;
    else if (rest[j] === '}' && --depth === 0) {
      end = j;
      break;
    }
  }
  if (end === -1) throw invalidArgument(`missing '}' in substitution: ${word}`);
  const inner = rest.slice(1, end);
  const next = start + 1 + end + 1;
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(inner);
  if (!m) throw invalidArgument(`bad substitution: \${${inner}}`);
  const name = m[1]!;
  const value = lookup(name);
  const op = m[2];
  if (op === undefined) return { value: value ?? '', next };
  const arg = (): string => expandWord(m[3] ?? '', lookup, escape);
  const colon = op.startsWith(':');
  const isSet = colon ? value !== undefined && value !== '' : value !== undefined;
  switch (op.slice(-1)) {
    case '-':
      return { value: isSet ? value! : arg(), next };
    case '+':
      return { value: isSet ? arg() : '', next };
    default: {
      if (isSet) return { value: value!, next };
      const message = arg();
      throw invalidArgument(`${name}: ${message === '' ? 'is not allowed to be unset' : message}`);
    }
  }
}

/**
 * `name=value` pairs of ENV, LABEL and ARG, each value expanded; also the legacy
 * `ENV name value with spaces` form. Every value sees the variables as they were before
 * the instruction (Docker's rule for one ENV line).
 */
export function keyValuePairs(keyword: string, args: string, lookup: Lookup, escape: string, allowBare = false): [string, string | undefined][] {
  const words = splitWords(args, escape);
  if (words.length === 0) throw invalidArgument(`${keyword} requires at least one argument`);
  if (!words[0]!.includes('=') && !allowBare) {
    if (words.length === 1) throw invalidArgument(`${keyword} must have two arguments`);
    const space = args.search(/\s/);
    return [[words[0]!, expandWord(args.slice(space).trim(), lookup, escape)]];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq === -1) {
      if (allowBare) return [expandWord(word, lookup, escape), undefined];
      throw invalidArgument(`Syntax error - can't find = in "${word}". Must be of the form: name=value`);
    }
    const key = expandWord(word.slice(0, eq), lookup, escape);
    if (key === '') throw invalidArgument(`${keyword} names can not be blank`);
    return [key, expandWord(word.slice(eq + 1), lookup, escape)];
  });
}
