/**
 * @module gateway/uwsgi/parser
 *
 * The uwsgi packet format, as nginx's `uwsgi_pass` sends it
 * (https://uwsgi-docs.readthedocs.io/en/latest/Protocol.html):
 *
 * ```
 * header   modifier1 u8 | datasize u16 little-endian | modifier2 u8
 * vars     datasize bytes of pairs: keysize u16le | key | valsize u16le | value
 * body     CONTENT_LENGTH bytes (not part of the packet: uwsgi/input.ts reads it)
 * ```
 *
 * `parseUwsgiPacket` is pure and incremental in the simplest way: hand it all
 * the bytes received so far and it answers "need N bytes in all", or the vars
 * and how many bytes the packet took, or throws one of uwsgi/errors.ts. It
 * rejects as early as the bytes allow: an unsupported modifier or an
 * oversized vars block is refused from the 4-byte header alone, so a server
 * never buffers more than 4 + `maxVarsSize` bytes for one packet.
 *
 * `encodeUwsgiPacket` is the inverse, for tests and for clients of ours.
 *
 * What it is not: it does not interpret the vars (the environ is built in
 * uwsgi/environ.ts), and it serves only modifier1=0/modifier2=0, the request
 * type nginx sends by default — not uWSGI's other packet types (signals,
 * spooler, cache, …).
 */
import { InvalidUwsgiHeader, TooManyUwsgiVars, UnsupportedModifier, UwsgiPacketTooLarge } from "./errors.ts";

/** The fixed header: modifier1, datasize (2 bytes), modifier2. */
export const UWSGI_HEADER_SIZE = 4;

/**
 * The largest vars block there can be: datasize is a u16. nginx refuses to
 * build a bigger one itself ("uwsgi request is too big"), so this is also the
 * most a legitimate nginx ever sends.
 */
export const MAX_VARS_BLOCK_SIZE = 0xffff;

/**
 * The most vars one packet may carry (Gunicorn's MAX_UWSGI_VARS). Without it a
 * 64 KiB block of empty-valued vars is ~13,000 entries to allocate and hash
 * per request; nginx sends ~15 CGI vars plus one per request header, and its
 * default header buffers (4 × 8 KiB) hold far fewer than 1000 real headers.
 */
export const MAX_UWSGI_VARS = 1000;

/** The only packet type served: modifier1=0 is "a WSGI-style HTTP request" and nginx's default (uwsgi_modifier1 0). */
const REQUEST_MODIFIER = 0;

/** Var names are printable ASCII without spaces: CGI names and HTTP_ + a header token. Anything else is a broken packet. */
const NAME_BYTE_MIN = 0x21;
const NAME_BYTE_MAX = 0x7e;

/** Limits a server may lower (never raise above the protocol's own). */
export interface UwsgiLimits {
  /** Largest vars block accepted, in bytes (default and maximum MAX_VARS_BLOCK_SIZE). */
  maxVarsSize?: number;
  /** Most vars accepted in one packet (default MAX_UWSGI_VARS). */
  maxVars?: number;
}

/** One var as received: the name (ASCII) and the value's raw bytes (the server decides how to decode each). */
export type UwsgiVar = readonly [name: string, value: Buffer];

export type UwsgiParseResult =
  /** Not enough bytes yet: `needed` is how many the packet takes in all, as far as known (4 until the header is in). */
  | { readonly status: "incomplete"; readonly needed: number }
  /** A whole packet: its vars in the order sent (names may repeat), and its size; the bytes after it are the body. */
  | { readonly status: "complete"; readonly vars: readonly UwsgiVar[]; readonly consumed: number };

function u16le(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function resolveLimits(limits: UwsgiLimits): { maxVarsSize: number; maxVars: number } {
  return {
    maxVarsSize: Math.min(limits.maxVarsSize ?? MAX_VARS_BLOCK_SIZE, MAX_VARS_BLOCK_SIZE),
    maxVars: limits.maxVars ?? MAX_UWSGI_VARS,
  };
}

/**
 * Parses one packet from the start of `bytes`. Throws UnsupportedModifier,
 * UwsgiPacketTooLarge, TooManyUwsgiVars or InvalidUwsgiHeader.
 */
export function parseUwsgiPacket(bytes: Uint8Array, limits: UwsgiLimits = {}): UwsgiParseResult {
  if (bytes.byteLength < UWSGI_HEADER_SIZE) return { status: "incomplete", needed: UWSGI_HEADER_SIZE };
  const modifier1 = bytes[0]!;
  const datasize = u16le(bytes, 1);
  const modifier2 = bytes[3]!;
  if (modifier1 !== REQUEST_MODIFIER || modifier2 !== REQUEST_MODIFIER) throw new UnsupportedModifier(modifier1, modifier2);
  const { maxVarsSize, maxVars } = resolveLimits(limits);
  if (datasize > maxVarsSize) throw new UwsgiPacketTooLarge(datasize, maxVarsSize);
  const consumed = UWSGI_HEADER_SIZE + datasize;
  if (bytes.byteLength < consumed) return { status: "incomplete", needed: consumed };
  const vars = parseVars(asBuffer(bytes), UWSGI_HEADER_SIZE, consumed, maxVars);
  return { status: "complete", vars, consumed };
}

/** Reads a u16le length at `at` that must leave room for itself before `end`. */
function readLength(bytes: Buffer, at: number, end: number, what: string): number {
  if (at + 2 > end) throw new InvalidUwsgiHeader(`the vars block ends inside the length of a ${what}`, at);
  return u16le(bytes, at);
}

function checkName(bytes: Buffer, start: number, end: number): void {
  if (start === end) throw new InvalidUwsgiHeader("a var has an empty name", start);
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (byte < NAME_BYTE_MIN || byte > NAME_BYTE_MAX) {
      throw new InvalidUwsgiHeader(`a var name has the byte 0x${byte.toString(16).padStart(2, "0")}`, i);
    }
  }
}

/** Parses the pairs in bytes[start, end). */
function parseVars(bytes: Buffer, start: number, end: number, maxVars: number): UwsgiVar[] {
  const vars: UwsgiVar[] = [];
  let at = start;
  while (at < end) {
    if (vars.length >= maxVars) throw new TooManyUwsgiVars(maxVars);
    const nameLength = readLength(bytes, at, end, "var name");
    const nameStart = at + 2;
    const nameEnd = nameStart + nameLength;
    if (nameEnd > end) {
      throw new InvalidUwsgiHeader(`a var name of ${nameLength} bytes runs past the vars block (${end - nameStart} left)`, at);
    }
    checkName(bytes, nameStart, nameEnd);
    const valueLength = readLength(bytes, nameEnd, end, "var value");
    const valueStart = nameEnd + 2;
    const valueEnd = valueStart + valueLength;
    if (valueEnd > end) {
      throw new InvalidUwsgiHeader(`a var value of ${valueLength} bytes runs past the vars block (${end - valueStart} left)`, nameEnd);
    }
    vars.push([bytes.toString("latin1", nameStart, nameEnd), bytes.subarray(valueStart, valueEnd)]);
    at = valueEnd;
  }
  return vars;
}

export interface EncodeOptions {
  modifier1?: number;
  modifier2?: number;
}

/**
 * Builds a packet (header and vars, no body). String values are sent as
 * UTF-8; pass bytes for anything else. Throws RangeError when a name, a value
 * or the whole block does not fit its u16.
 */
export function encodeUwsgiPacket(
  vars: Iterable<readonly [name: string, value: string | Uint8Array]>,
  options: EncodeOptions = {},
): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of vars) {
    const nameBytes = Buffer.from(name, "latin1");
    const valueBytes = typeof value === "string" ? Buffer.from(value, "utf8") : asBuffer(value);
    if (nameBytes.length > 0xffff || valueBytes.length > 0xffff) {
      throw new RangeError(`uwsgi var ${name.slice(0, 40)} does not fit a 16-bit length`);
    }
    parts.push(u16Buffer(nameBytes.length), nameBytes, u16Buffer(valueBytes.length), valueBytes);
  }
  const block = Buffer.concat(parts);
  if (block.length > MAX_VARS_BLOCK_SIZE) throw new RangeError(`uwsgi vars block of ${block.length} bytes does not fit a 16-bit size`);
  const header = Buffer.alloc(UWSGI_HEADER_SIZE);
  header.writeUInt8(options.modifier1 ?? REQUEST_MODIFIER, 0);
  header.writeUInt16LE(block.length, 1);
  header.writeUInt8(options.modifier2 ?? REQUEST_MODIFIER, 3);
  return Buffer.concat([header, block]);
}

function u16Buffer(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16LE(value);
  return buffer;
}
