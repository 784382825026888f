/**
 * The few parts of DNS messages (RFC 1035) the embedded resolver needs: read the question of
 * a query, and build an answer with A or PTR records or an error code. Everything else is
 * forwarded byte for byte to the upstream resolvers.
 */

export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const RCODE_NOERROR = 0;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;

export interface Question {
  id: number;
  flags: number;
  name: string;
  type: number;
  class: number;
  /** Offset just after the question, where answers begin. */
  end: number;
}

/** The first question of a query, or undefined when the message is malformed or not a query. */
export function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12) return undefined;
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    if (offset >= msg.length) return undefined;
    const len = msg[offset]!;
    offset += 1;
    if (len === 0) break;
    if (len > 63 || offset + len > msg.length) return undefined;
    labels.push(msg.subarray(offset, offset + len).toString('latin1'));
    offset += len;
  }
  if (offset + 4 > msg.length) return undefined;
  return { id: msg.readUInt16BE(0), flags, name: labels.join('.'), type: msg.readUInt16BE(offset), class: msg.readUInt16BE(offset + 2), end: offset + 4 };
}

export type Answer = { type: typeof TYPE_A; ip: string } | { type: typeof TYPE_PTR; name: string };

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter((p) => p !== '');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

/** A response to `query` carrying its question and the given answers (authoritative). */
export function buildResponse(query: Buffer, q: Question, rcode: number, answers: Answer[], ttl = 600): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, AA, RD copied from the query, RA.
  header.writeUInt16BE(0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const question = query.subarray(12, q.end);
  const records = answers.map((a) => {
    const rdata = a.type === TYPE_A ? Buffer.from(a.ip.split('.').map(Number)) : encodeName(a.name);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(a.type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, question, ...records]);
}

/** "4.3.2.1.in-addr.arpa" → "1.2.3.4" */
export function reverseNameToIp(name: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/i.exec(name);
  return m ? `${m[4]}.${m[3]}.${m[2]}.${m[1]}` : undefined;
}
