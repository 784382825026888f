import { invalidArgument } from '../../common/errors.js';

/**
 * `docker top` from `ps` output: the header gives the titles, the last column takes the rest of
 * the line, and only rows whose PID belongs to the container are kept.
 */
export function parsePs(stdout: string, pids: Set<number>): { Titles: string[]; Processes: string[][] } {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift();
  if (header === undefined) return { Titles: [], Processes: [] };
  const titles = header.trim().split(/\s+/);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw invalidArgument("Couldn't find PID field in ps output");
  const processes: string[][] = [];
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    if (fields.length > titles.length) {
      fields.splice(titles.length - 1, fields.length, fields.slice(titles.length - 1).join(' '));
    }
    const pid = Number(fields[pidIndex]);
    if (pids.has(pid)) processes.push(fields);
  }
  return { Titles: titles, Processes: processes };
}
