import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../../src/server/build/dockerfile.js';
import { isIgnored, parseDockerignore } from '../../../src/server/build/dockerignore.js';
import { expandWord, keyValuePairs, splitWords } from '../../../src/server/build/shell-words.js';
import { applyConfigStep, parseDuration } from '../../../src/server/build/config-steps.js';
import type { ImageRuntimeConfig } from '../../../src/server/images/types.js';

test('parser: continuations, comments inside them, JSON form, flags and the escape directive', () => {
  const file = parseDockerfile(['# syntax=docker/dockerfile:1', '# escape=`', 'FROM busybox AS base', 'RUN echo a `', '# a comment', '', '  b', 'COPY --from=base --chown=1:2 ["a b", "/c/"]', 'cmd ["x", "y"]', 'CMD not [json'].join('\n'));
  assert.equal(file.escape, '`');
  const [from, run, copy, cmd, shellCmd] = file.instructions;
  assert.equal(from!.args, 'busybox AS base');
  assert.equal(run!.args, 'echo a   b');
  assert.equal(run!.line, 4);
  assert.deepEqual(copy!.flags, { from: 'base', chown: '1:2' });
  assert.deepEqual(copy!.json, ['a b', '/c/']);
  assert.equal(cmd!.keyword, 'CMD');
  assert.deepEqual(cmd!.json, ['x', 'y']);
  assert.equal(shellCmd!.json, undefined);
});

test('parser: errors name the line', () => {
  const cases: { name: string; text: string; message: RegExp }[] = [
    { name: 'unknown instruction', text: 'FROM x\nFOO bar', message: /line 2: unknown instruction: FOO/ },
    { name: 'unknown flag', text: 'FROM x\nCOPY --nope=1 a b', message: /line 2: Unknown flag: nope/ },
    { name: 'missing argument', text: 'FROM x\nWORKDIR', message: /line 2: WORKDIR requires at least one argument/ },
    { name: 'heredoc', text: 'FROM x\nRUN <<EOF\necho\nEOF', message: /heredocs/ },
    { name: 'SHELL not JSON', text: 'FROM x\nSHELL /bin/bash', message: /SHELL requires the arguments to be in JSON form/ },
  ];
  for (const c of cases) assert.throws(() => parseDockerfile(c.text), c.message, c.name);
});

test('words: quotes stay until expansion; variables and their modifiers', () => {
  assert.deepEqual(splitWords(`a "b c" 'd e' f\\ g`, '\\'), ['a', '"b c"', "'d e'", 'f\\ g']);
  const env: Record<string, string> = { A: 'one', EMPTY: '' };
  const lookup = (n: string): string | undefined => env[n];
  const cases: [string, string][] = [
    ['$A', 'one'],
    ['${A}x', 'onex'],
    ['${MISSING:-def}', 'def'],
    ['${EMPTY:-def}', 'def'],
    ['${EMPTY-def}', ''],
    ['${A:+set}', 'set'],
    ['${MISSING:+set}', ''],
    ["'$A'", '$A'],
    ['"$A b"', 'one b'],
    ['\\$A', '$A'],
    ['$', '$'],
    ['${MISSING:-${A}}', 'one'],
  ];
  for (const [word, expected] of cases) assert.equal(expandWord(word, lookup, '\\'), expected, word);
  assert.throws(() => expandWord('${MISSING:?must be set}', lookup, '\\'), /MISSING: must be set/);
  assert.deepEqual(keyValuePairs('ENV', 'A=1 B="two words" C=$A', lookup, '\\'), [['A', '1'], ['B', 'two words'], ['C', 'one']]);
  assert.deepEqual(keyValuePairs('ENV', 'LEGACY value with spaces', lookup, '\\'), [['LEGACY', 'value with spaces']]);
  assert.deepEqual(keyValuePairs('ARG', 'X Y=2', lookup, '\\', true), [['X', undefined], ['Y', '2']]);
});

test('.dockerignore: globs, ** and exceptions, last match wins, directories cover their contents', () => {
  const rules = parseDockerignore('# comment\n*.log\n!keep.log\nbuild/\n**/tmp\n/secret\n');
  const cases: [string, boolean][] = [
    ['a.log', true],
    ['keep.log', false],
    ['sub/a.log', false], // "*.log" matches at the root only
    ['build/x/y', true],
    ['deep/er/tmp/file', true],
    ['secret', true],
    ['src/main.ts', false],
  ];
  for (const [path, ignored] of cases) assert.equal(isIgnored(rules, path), ignored, path);
});

test('config steps: ENTRYPOINT clears an inherited CMD, HEALTHCHECK durations, EXPOSE ranges', () => {
  const lookup = (): undefined => undefined;
  const step = (text: string, state: { config: ImageRuntimeConfig; cmdSet: boolean }): string =>
    applyConfigStep(parseDockerfile(`FROM x\n${text}`).instructions[1]!, state, lookup, '\\').comment;
  const inherited = { config: { Cmd: ['old'] } as ImageRuntimeConfig, cmdSet: false };
  step('ENTRYPOINT ["/e"]', inherited);
  assert.equal(inherited.config.Cmd, undefined);
  const own = { config: {} as ImageRuntimeConfig, cmdSet: false };
  step('CMD ["c"]', own);
  step('ENTRYPOINT /e', own);
  assert.deepEqual(own.config, { Cmd: ['c'], Entrypoint: ['/bin/sh', '-c', '/e'] });
  step('HEALTHCHECK --interval=1m30s --timeout=500ms CMD true', own);
  assert.deepEqual((own.config as ImageRuntimeConfig).Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 90e9, Timeout: 500e6 });
  step('EXPOSE 7000-7002/udp 80', own);
  assert.deepEqual(Object.keys((own.config as ImageRuntimeConfig).ExposedPorts!), ['7000/udp', '7001/udp', '7002/udp', '80/tcp']);
  assert.throws(() => step('STOPSIGNAL SIGNOPE', own), /Invalid signal/);
  assert.throws(() => step('ONBUILD ONBUILD RUN x', own), /Chaining ONBUILD/);
  assert.equal(parseDuration('1h2m3s'), 3723e9);
  assert.equal(parseDuration('5'), undefined);
});
