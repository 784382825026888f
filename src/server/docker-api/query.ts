import { invalidArgument } from '../../common/errors.js';

export type Query = Record<string, string | string[] | undefined>;

/** One value of a query parameter; a repeated parameter counts by its last value. */
export function queryString(query: unknown, key: string): string | undefined {
  const value = (query as Query | undefined)?.[key];
  return Array.isArray(value) ? value[value.length - 1] : value;
}

/** All values of a repeatable query parameter. */
export function queryList(query: unknown, key: string): string[] {
  const value = (query as Query | undefined)?.[key];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Docker's boolean query values: 1/true/True are true; 0/false/empty are false. */
export function queryBool(query: unknown, key: string, fallback = false): boolean {
  const value = queryString(query, key);
  if (value === undefined) return fallback;
  const lowered = value.toLowerCase();
  if (lowered === '' || lowered === '0' || lowered === 'false') return false;
  if (lowered === '1' || lowered === 'true') return true;
  throw invalidArgument(`invalid boolean value for ${key}: ${value}`);
}

export function queryInt(query: unknown, key: string): number | undefined {
  const value = queryString(query, key);
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d+$/.test(value)) throw invalidArgument(`invalid value for ${key}: ${value}: must be an integer`);
  return Number(value);
}
