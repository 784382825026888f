import type { Duplex } from 'node:stream';

/**
 * One line of JSON each way: the join conversation's framing. readLine takes bytes up to the
 * first newline and refuses more than `max` of them (a peer cannot make us buffer forever).
 */
export function readLine(stream: Duplex, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const newline = buffered.indexOf(0x0a);
      if (newline >= 0) {
        cleanup();
        resolve(buffered.subarray(0, newline).toString('utf8'));
      } else if (buffered.length > max) {
        cleanup();
        reject(new Error(`line longer than ${max} bytes`));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('connection closed before a whole line arrived'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
  });
}

export function writeLine(stream: Duplex, value: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(`${JSON.stringify(value)}\n`, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * The values of a stream of newline-delimited JSON, in order. A line that does not parse (a
 * blank one, or one cut short by a peer that went away) goes to `onBadLine` and is skipped; an
 * unfinished last line is dropped. A line longer than `maxLine` bytes ends the reading with an
 * error, so a peer cannot make us buffer forever.
 */
export async function* jsonLines<T>(
  stream: AsyncIterable<Buffer | string>,
  options: { maxLine?: number; onBadLine?: (line: string, err: unknown) => void } = {},
): AsyncGenerator<T> {
  const { maxLine = Infinity, onBadLine } = options;
  let buffered = Buffer.alloc(0);
  for await (const chunk of stream) {
    buffered = Buffer.concat([buffered, typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk]);
    let newline: number;
    while ((newline = buffered.indexOf(0x0a)) >= 0) {
      const line = buffered.subarray(0, newline).toString('utf8');
      buffered = buffered.subarray(newline + 1);
      let value: T;
      try {
        value = JSON.parse(line) as T;
      } catch (err) {
        onBadLine?.(line, err);
        continue;
      }
      yield value;
    }
    if (buffered.length > maxLine) throw new Error(`line longer than ${maxLine} bytes`);
  }
}
