import { randomBytes } from 'node:crypto';

/** A Docker-style object id: 64 lowercase hex characters. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

export const shortId = (id: string): string => id.slice(0, 12);

/** Container names as Docker accepts them (a leading slash is stripped by callers). */
export const VALID_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const ADJECTIVES = [
  'amazing', 'brave', 'calm', 'clever', 'cool', 'eager', 'elated', 'focused', 'gallant',
  'happy', 'jolly', 'keen', 'kind', 'loving', 'modest', 'nifty', 'quirky', 'serene',
  'sharp', 'stoic', 'tender', 'vibrant', 'wizardly', 'zealous',
];
const NAMES = [
  'babbage', 'curie', 'darwin', 'einstein', 'euclid', 'faraday', 'galileo', 'hopper',
  'hypatia', 'kepler', 'lovelace', 'meitner', 'newton', 'noether', 'pasteur', 'ritchie',
  'shannon', 'tesla', 'thompson', 'turing', 'wozniak',
];

/** A random adjective_name, like dockerd's generated container names. */
export function randomName(): string {
  const pick = (list: string[]): string => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)}_${pick(NAMES)}`;
}
