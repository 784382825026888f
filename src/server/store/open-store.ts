import { join } from 'node:path';
import { invalidArgument } from '../../common/errors.js';
import { EtcdStore } from './etcd/etcd-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** Where an etcd-backed Store lives: `etcd://host:port[,host:port...][/key-prefix/]`. */
export interface EtcdLocation {
  endpoints: string[];
  prefix: string;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * Reads `etcd://127.0.0.1:2379,127.0.0.1:22379`. An optional path sets the key prefix (default
 * /berth/), so that several installations can share one cluster.
 */
export function parseEtcdUrl(text: string): EtcdLocation {
  const match = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(text);
  if (!match) throw invalidArgument(`store "${text}" is not etcd://host:port[,host:port...]`);
  const endpoints = match[1]!.split(',');
  for (const endpoint of endpoints) {
    const parts = HOST_PORT.exec(endpoint);
    const port = Number(parts?.[2]);
    if (!parts || port < 1 || port > 65535) throw invalidArgument(`"${endpoint}" in store "${text}" is not host:port`);
  }
  let prefix = match[2] ?? '/berth/';
  if (!prefix.endsWith('/')) prefix += '/';
  return { endpoints, prefix };
}

/**
 * The Store a server runs on: embedded SQLite under the data root by default, or an etcd
 * cluster when `store` is an etcd:// URL (several servers may then share it).
 */
export function openStore(options: { dataRoot: string; store?: string }): Store {
  if (options.store === undefined || options.store === 'sqlite') return new SqliteStore(join(options.dataRoot, 'berth.db'));
  return new EtcdStore(parseEtcdUrl(options.store));
}
