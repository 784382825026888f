/**
 * Reads /usr/share/doc/<pkg>/changelog.Debian.gz out of a .deb without unpacking it:
 * `dpkg-deb --fsys-tarfile` streams the data member as a plain tar, which tar-stream walks.
 * Only a regular file counts: a doc directory that is a symlink to another package's (common
 * for library -dev and -common packages) has no changelog of its own, and the caller tries
 * another binary of the same source. A native package (no Debian revision, such as apt)
 * has only changelog.gz, which is then its Debian changelog: it is the fallback when no
 * changelog.Debian is present, and the caller checks that it parses as the source's.
 */
import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { invalidArgument } from '../../../../common/errors.js';

const DEBIAN_CHANGELOG = /^(?:\.\/)?usr\/share\/doc\/[^/]+\/changelog\.Debian(\.gz)?$/;
const NATIVE_CHANGELOG = /^(?:\.\/)?usr\/share\/doc\/[^/]+\/changelog(\.gz)?$/;

async function readEntry(entry: AsyncIterable<unknown>, gzipped: boolean): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk as Buffer);
  const data = Buffer.concat(chunks);
  return (gzipped ? gunzipSync(data) : data).toString('utf8');
}

/** The changelog text, or null when the package ships none as a regular file. */
export async function readDebChangelog(debPath: string): Promise<string | null> {
  const child = spawn('dpkg-deb', ['--fsys-tarfile', debPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const errors: Buffer[] = [];
  child.stderr.on('data', (c: Buffer) => errors.push(c));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  const extract = tar.extract();
  child.stdout.pipe(extract);
  let found: string | null = null;
  let native: string | null = null;
  try {
    for await (const entry of extract) {
      const isFile = entry.header.type === 'file';
      const debian = isFile && found === null ? DEBIAN_CHANGELOG.exec(entry.header.name) : null;
      const upstream = isFile && native === null && debian === null ? NATIVE_CHANGELOG.exec(entry.header.name) : null;
      if (debian !== null) {
        found = await readEntry(entry, debian[1] === '.gz');
        // Nothing after it is needed: stop decompressing the rest of a possibly large package.
        child.kill();
        break;
      }
      if (upstream !== null) native = await readEntry(entry, upstream[1] === '.gz');
      else entry.resume();
    }
  } finally {
    child.stdout.unpipe(extract);
    child.stdout.resume();
  }
  const code = await exited;
  if (code !== 0 && found === null) throw invalidArgument(`dpkg-deb cannot read ${debPath}: ${Buffer.concat(errors).toString().trim()}`);
  return found ?? native;
}
