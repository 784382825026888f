/**
 * Load generator for bench/network.ts, run as its own process so that the same client can be
 * started inside another network namespace (`nsenter --net=... node http-rate.js`) to reach a
 * daemon that lives there. Each request opens a new TCP connection (agent: false): what is
 * measured is the cost of a connection through the published port, not of HTTP keep-alive.
 *
 * Usage: node dist/bench/http-rate.js HOST PORT REQUESTS CLIENTS
 * Prints the requests per second as a bare number on stdout.
 */
import { request } from 'node:http';

function get(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/index.html', agent: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the server answers (a fresh published port may take a moment), up to 10 s. */
async function waitForServer(host: string, port: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await get(host, port);
    } catch (err) {
      if (attempt >= 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function rate(host: string, port: number, total: number, clients: number): Promise<number> {
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        next++;
        await get(host, port);
      }
    }),
  );
  return Math.round(total / ((performance.now() - began) / 1000));
}

const [host, port, requests, clients] = process.argv.slice(2);
if (host === undefined || port === undefined || requests === undefined || clients === undefined) {
  console.error('usage: http-rate HOST PORT REQUESTS CLIENTS');
  process.exit(2);
}
await waitForServer(host, Number(port));
await rate(host, Number(port), Math.min(200, Number(requests)), Number(clients)); // warm-up
console.log(await rate(host, Number(port), Number(requests), Number(clients)));
