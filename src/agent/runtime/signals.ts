import { constants as osConstants } from 'node:os';
import { invalidArgument } from '../../common/errors.js';

/** Signal as Docker accepts it: a number, or a name with or without SIG, any case. */
export function parseSignal(signal: string): number {
  const text = signal.trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 64) return n;
    throw invalidArgument(`Invalid signal: ${signal}`);
  }
  const upper = text.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const signals = osConstants.signals as Record<string, number>;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const offset = Number(rt[1] ?? 0);
    const n = name.startsWith('SIGRTMIN') ? 34 + offset : 64 - offset;
    if (n >= 34 && n <= 64) return n;
  }
  const n = signals[name];
  if (n === undefined) throw invalidArgument(`Invalid signal: ${signal}`);
  return n;
}
