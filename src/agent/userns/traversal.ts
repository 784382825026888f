import { chmod, stat } from 'node:fs/promises';

/** Adds search (x) permission for others to directories Berth owns; nothing else changes. */
export async function allowTraversal(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    const mode = (await stat(dir)).mode & 0o7777;
    if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001);
  }
}
