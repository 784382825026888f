import { constants } from 'node:os';
import { invalidArgument } from '../../common/errors.js';

const SIGNALS = constants.signals as Record<string, number>;

/** Normalises "KILL", "SIGKILL", "9" to a signal name runc accepts, or refuses it as Docker does. */
export function normaliseSignal(signal: string): string {
  const trimmed = signal.trim().toUpperCase();
  if (/^\d+$/.test(trimmed)) {
    const number = Number(trimmed);
    const name = Object.entries(SIGNALS).find(([, value]) => value === number)?.[0];
    if (!name || number === 0) throw invalidArgument(`Invalid signal: ${signal}`);
    return name;
  }
  const name = trimmed.startsWith('SIG') ? trimmed : `SIG${trimmed}`;
  if (!(name in SIGNALS)) throw invalidArgument(`Invalid signal: ${signal}`);
  return name;
}

export function signalNumber(name: string): number {
  return SIGNALS[name] ?? 0;
}
