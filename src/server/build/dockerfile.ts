import { invalidArgument } from '../../common/errors.js';

/**
 * The Dockerfile parser of the classic builder: logical lines, not meaning.
 *
 * Terms: a parser directive is a `# name=value` comment at the very top (only `escape` and
 * `syntax` are known; `syntax` is ignored as the classic builder does); the escape character
 * (`\` or a backtick) ends a line that continues on the next; comment lines (first non-blank
 * character `#`) are dropped, also inside a continued instruction. An instruction is a
 * keyword plus its arguments; leading `--name=value` words of FROM, RUN, COPY, ADD and
 * HEALTHCHECK are its flags. The JSON ("exec") form is recognised here; variables are not
 * expanded here (shell-words.ts does that when the instruction runs).
 */
export interface Instruction {
  /** Upper case: FROM, RUN, ... */
  keyword: string;
  /** The arguments after the flags, as written (continuations joined). */
  args: string;
  flags: Record<string, string>;
  /** The arguments as a JSON string array, when written in that form. */
  json?: string[];
  /** The instruction as `Step N/M : ...` shows it. */
  original: string;
  /** 1-based line of the instruction's first line. */
  line: number;
}

export interface Dockerfile {
  escape: string;
  instructions: Instruction[];
}

const KEYWORDS = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT',
  'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

/** Instructions whose leading `--flag` words are flags, with the flags each accepts. */
const FLAGS: Record<string, readonly string[]> = {
  FROM: ['platform'],
  RUN: [],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Instructions whose arguments may be a JSON array (exec form). */
const JSON_FORMS = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'VOLUME', 'COPY', 'ADD']);

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let index = 0;
  // Parser directives: only before anything else, each at most once.
  const seen = new Set<string>();
  for (; index < lines.length; index++) {
    const match = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(lines[index]!);
    if (!match) break;
    const name = match[1]!.toLowerCase();
    if (seen.has(name)) throw parseError(index + 1, `only one ${name} parser directive can be used`);
    seen.add(name);
    if (name === 'escape') {
      if (match[2] !== '\\' && match[2] !== '`') throw parseError(index + 1, `invalid escape token '${match[2]}' does not match ` + '[\\\\`]');
      escape = match[2]!;
    } else if (name !== 'syntax' && name !== 'check') {
      break; // an unknown directive is a comment, which ends the directives
    }
  }

  const instructions: Instruction[] = [];
  while (index < lines.length) {
    const raw = lines[index]!;
    const startLine = index + 1;
    index++;
    if (isBlankOrComment(raw)) continue;
    let logical = '';
    let line = raw;
    for (;;) {
      const { text: body, continued } = stripContinuation(line, escape);
      logical += body;
      if (!continued) break;
      // Comment and empty lines inside a continued instruction are skipped, as Docker does.
      while (index < lines.length && isBlankOrComment(lines[index]!)) index++;
      if (index >= lines.length) break;
      line = lines[index]!;
      index++;
    }
    instructions.push(parseInstruction(logical.trim(), startLine));
  }
  return { escape, instructions };
}

function isBlankOrComment(line: string): boolean {
  const trimmed = line.trim();
  return trimmed === '' || trimmed.startsWith('#');
}

function stripContinuation(line: string, escape: string): { text: string; continued: boolean } {
  const trimmed = line.replace(/\s+$/, '');
  if (!trimmed.endsWith(escape)) return { text: line, continued: false };
  // An escaped escape character ("\\") at the end is a literal, not a continuation.
  let count = 0;
  for (let i = trimmed.length - 1; i >= 0 && trimmed[i] === escape; i--) count++;
  if (count % 2 === 0) return { text: line, continued: false };
  return { text: trimmed.slice(0, -1), continued: true };
}

export function parseInstruction(logical: string, line: number): Instruction {
  const match = /^(\S+)\s*(.*)$/s.exec(logical);
  if (!match) throw parseError(line, 'empty instruction');
  const keyword = match[1]!.toUpperCase();
  if (!KEYWORDS.has(keyword)) throw parseError(line, `unknown instruction: ${match[1]}`);
  let rest = match[2]!;
  if (/^<</.test(rest) || (keyword === 'RUN' || keyword === 'COPY') && /(^|\s)<<-?["']?[A-Za-z]/.test(rest) && !rest.trimStart().startsWith('[')) {
    throw parseError(line, 'heredocs in Dockerfiles need BuildKit; the classic builder does not support them');
  }
  const flags: Record<string, string> = {};
  const accepted = FLAGS[keyword];
  if (accepted !== undefined) {
    for (;;) {
      const flag = /^--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
      if (!flag) break;
      const name = flag[1]!;
      if (!accepted.includes(name)) throw invalidArgument(`dockerfile parse error on line ${line}: Unknown flag: ${name}`);
      flags[name] = flag[2] ?? 'true';
      rest = rest.slice(flag[0].length);
    }
  }
  rest = rest.trim();
  const instruction: Instruction = { keyword, args: rest, flags, original: logical, line };
  if (JSON_FORMS.has(keyword) && rest.startsWith('[')) {
    const json = parseJsonArray(rest);
    if (json !== undefined) instruction.json = json;
  }
  if (keyword === 'SHELL' && instruction.json === undefined) throw parseError(line, 'SHELL requires the arguments to be in JSON form');
  if (rest === '' && !['CMD', 'ENTRYPOINT'].includes(keyword)) {
    throw parseError(line, `${keyword} requires at least one argument`);
  }
  return instruction;
}

function parseJsonArray(text: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((item) => typeof item === 'string')) return parsed as string[];
  } catch {
    // Not JSON: the shell form, as Docker falls back.
  }
  return undefined;
}

export function parseError(line: number, message: string): Error {
  return invalidArgument(`dockerfile parse error on line ${line}: ${message}`);
}
