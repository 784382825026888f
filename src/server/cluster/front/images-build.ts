import { posix } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { parseDockerfile } from '../../build/dockerfile.js';

/**
 * What the front needs to know of a build before choosing its host: the base images its
 * Dockerfile names. A build runs on one host's engine, whose builder can only start from an
 * image that host holds (or pulls from a registry); an image the tenant built or loaded on
 * Berth may sit on another host. So the front reads the build context as it streams past,
 * far enough to find the Dockerfile, then forwards every byte it read followed by the rest.
 *
 * The context is held in memory only up to the Dockerfile's entry (the docker CLI puts it
 * near the start; at worst the whole context is read). A compressed context, or one with no
 * readable Dockerfile, is forwarded untouched with no base images named; the engine then
 * reports the problem itself.
 */
export interface PeekedContext {
  /** Base images of the Dockerfile's stages, as written, without scratch, stage names and ARG-made names. */
  baseImages: string[];
  /** The whole context again, for the engine. */
  body: Readable;
}

const MAX_DOCKERFILE_BYTES = 1024 * 1024;

export async function peekBuildContext(source: Readable, dockerfileName: string): Promise<PeekedContext> {
  const wanted = posix.normalize(dockerfileName === '' ? 'Dockerfile' : dockerfileName).replace(/^(\.\/|\/)+/, '');
  const head: Buffer[] = [];
  const extract = tar.extract();
  let dockerfile: string | undefined;
  let failed = false;
  extract.on('entry', (header, stream, next) => {
    const name = posix.normalize(header.name).replace(/^(\.\/|\/)+/, '');
    if (name !== wanted || header.type !== 'file' || (header.size ?? 0) > MAX_DOCKERFILE_BYTES) {
      stream.on('end', next);
      stream.resume();
      return;
    }
    const parts: Buffer[] = [];
    stream.on('data', (chunk: unknown) => parts.push(chunk as Buffer));
    stream.on('end', () => {
      dockerfile = Buffer.concat(parts).toString('utf8');
      next();
    });
  });
  extract.on('error', () => {
    failed = true;
  });

  const chunks = source.iterator({ destroyOnReturn: false });
  let first = true;
  for await (const chunk of chunks) {
    const buffer = chunk as Buffer;
    head.push(buffer);
    if (first) {
      first = false;
      // gzip, bzip2, xz, zstd: compressed contexts are left to the engine.
      if (/^(1f8b|425a68|fd377a58|28b52ffd)/.test(buffer.subarray(0, 4).toString('hex'))) failed = true;
    }
    if (failed) break;
    await new Promise<void>((resolve) => (extract.write(buffer) ? resolve() : extract.once('drain', () => resolve())));
    // Entries are parsed asynchronously: let the parser catch up before looking.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (dockerfile !== undefined || failed) break;
  }
  extract.destroy();
  const rest = source;
  const body = Readable.from(
    (async function* () {
      yield* head;
      for await (const chunk of rest) yield chunk as Buffer;
    })(),
    { objectMode: false },
  );
  return { baseImages: dockerfile === undefined ? [] : baseImagesOf(dockerfile), body };
}

/** The images the stages start from: `FROM [--platform=..] image [AS name]`. */
export function baseImagesOf(text: string): string[] {
  let instructions;
  try {
    instructions = parseDockerfile(text).instructions;
  } catch {
    return [];
  }
  const stages = new Set<string>();
  const images: string[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword !== 'FROM') continue;
    const words = instruction.args.trim().split(/\s+/);
    const image = words[0] ?? '';
    if (words.length >= 3 && words[1]!.toLowerCase() === 'as') stages.add(words[2]!.toLowerCase());
    if (image === '' || image.includes('$') || image.toLowerCase() === 'scratch' || stages.has(image.toLowerCase())) continue;
    if (!images.includes(image)) images.push(image);
  }
  return images;
}
