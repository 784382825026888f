import { request } from 'node:http';
import { parseListenAddress } from './listen.js';

/**
 * The berth CLI's client for the admin API on the operator's local socket. Errors come back in
 * Docker's shape ({"message"}) and are thrown as AdminError with that message.
 */
export class AdminError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class AdminClient {
  private readonly socketPath: string;

  constructor(host: string) {
    const address = parseListenAddress(host);
    if (address.kind !== 'unix') throw new Error('the admin API is served on the local unix socket only; pass -H unix:///path.sock');
    this.socketPath = address.path;
  }

  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          method,
          path,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            if (status >= 400) {
              const message = (parsed as { message?: string } | undefined)?.message ?? `HTTP ${status}`;
              reject(new AdminError(message, status));
            } else resolve(parsed as T);
          });
        },
      );
      req.on('error', (err) => reject(new AdminError(`cannot reach Berth at ${this.socketPath}: ${err.message}`, 0)));
      req.end(payload);
    });
  }
}
