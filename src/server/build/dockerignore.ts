import { posix } from 'node:path';

/**
 * `.dockerignore` rules as Docker applies them to a build context.
 *
 * Each line is a pattern (Go's filepath.Match syntax plus `**` for any number of
 * directories), cleaned and made relative to the context root; `#` lines are comments; a
 * leading `!` makes an exception. The last pattern that matches a path decides. A pattern
 * that matches a directory also matches everything below it.
 */
export interface IgnoreRule {
  pattern: string;
  exception: boolean;
  regex: RegExp;
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let exception = false;
    if (line.startsWith('!')) {
      exception = true;
      line = line.slice(1).trim();
    }
    let pattern = posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '');
    if (pattern === '.' || pattern === '') pattern = '.';
    rules.push({ pattern, exception, regex: patternRegex(pattern) });
  }
  return rules;
}

/** Whether `path` (relative, no leading slash) is left out of the context. */
export function isIgnored(rules: readonly IgnoreRule[], path: string): boolean {
  let ignored = false;
  const parents = parentPaths(path);
  for (const rule of rules) {
    if (rule.pattern === '.') {
      ignored = !rule.exception;
      continue;
    }
    if (parents.some((p) => rule.regex.test(p))) ignored = !rule.exception;
  }
  return ignored;
}

/** Whether some exception could bring back a path below `dir` (so the walk must go in). */
export function hasExceptionsBelow(rules: readonly IgnoreRule[], dir: string): boolean {
  return rules.some((rule) => rule.exception && (rule.pattern.startsWith(`${dir}/`) || rule.pattern.includes('*') || rule.pattern.includes('?') || rule.pattern.includes('[')));
}

function parentPaths(path: string): string[] {
  const parts = path.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

function patternRegex(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // "**/" matches zero or more directories; a trailing "**" matches everything.
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end === -1) {
        re += '\\[';
      } else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('^')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRegex(pattern[++i]!);
    } else {
      re += escapeRegex(c);
    }
  }
  return new RegExp(`${re}$`);
}

const escapeRegex = (c: string): string => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
