/**
 * Property fuzz of the proxy's upstream parsers (src/proxy/upstream/):
 * parseResponseHead and ChunkedDecoder. The connection feeds the head parser
 * the bytes so far on every read, and the decoder each read as it comes, so
 * the properties are about splits: a valid message cut anywhere reads the
 * same as in one piece, and arbitrary or mutated bytes give the same outcome
 * however they are cut — a result or an UpstreamProtocolError, never another
 * exception, never a loop.
 * Seed and size: test/fuzz/params.ts (FUZZ_SEED, FUZZ_RUNS, FUZZ_PATH).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_HEAD_BYTES, parseResponseHead, UpstreamProtocolError } from "../../src/proxy/upstream/response-head.ts";
import { ChunkedDecoder } from "../../src/proxy/upstream/chunked-decoder.ts";
import { describeBytes, fuzzParameters, yielding } from "./params.ts";

const latin1 = (text: string) => Buffer.from(text, "latin1");
const chars = (alphabet: string) => fc.constantFrom(...alphabet.split(""));
const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const token = fc.string({ unit: chars(TCHARS), minLength: 1, maxLength: 20 });
/** Field-value text: VCHAR and obs-text with inner spaces and tabs, none at either end (they are optional whitespace). */
const fieldValue = fc
  .string({ unit: fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constantFrom(0x20, 0x09)).map((c) => String.fromCharCode(c)), maxLength: 40 })
  .map((value) => value.replace(/^[ \t]+|[ \t]+$/g, ""));

/** Cut points of a buffer, as a sorted list of offsets inside it. */
const cuts = fc.array(fc.nat(), { maxLength: 10 });
function pieces(bytes: Buffer, at: readonly number[]): Buffer[] {
  const offsets = [...new Set(at.map((n) => (bytes.length ? n % bytes.length : 0)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const offset of offsets) {
    if (offset > from) out.push(bytes.subarray(from, offset));
    from = Math.max(from, offset);
  }
  out.push(bytes.subarray(from));
  return out;
}

/* ------------------------------------------------------------ response head */

type HeadOutcome = { kind: "head"; value: unknown } | { kind: "more" } | { kind: "refused"; message: string };

/** One call of the parser, with anything but its own error failing the property. */
function readHead(bytes: Buffer, method: string): HeadOutcome {
  try {
    const parsed = parseResponseHead(bytes, method);
    return parsed ? { kind: "head", value: parsed } : { kind: "more" };
  } catch (error) {
    if (!(error instanceof UpstreamProtocolError)) throw new Error(`a foreign error from parseResponseHead on ${describeBytes(bytes)}: ${String(error)}`, { cause: error });
    return { kind: "refused", message: error.message };
  }
}

/** How the connection reads a head: the bytes so far, on every read, until it gets an answer. */
function readHeadInPieces(bytes: Buffer, at: readonly number[], method: string): HeadOutcome {
  let received = 0;
  for (const piece of pieces(bytes, at)) {
    received += piece.length;
    const outcome = readHead(bytes.subarray(0, received), method);
    if (outcome.kind !== "more") return outcome;
  }
  return { kind: "more" };
}

const validHead = fc
  .record({
    minor: fc.constantFrom("0", "1"),
    status: fc.integer({ min: 100, max: 599 }),
    reason: fc.option(fieldValue, { nil: undefined }),
    headers: fc.array(fc.tuple(token, fieldValue), { maxLength: 12 }),
    framing: fc.constantFrom("length", "chunked", "close"),
    length: fc.integer({ min: 0, max: 1e9 }),
    method: fc.constantFrom("GET", "HEAD", "POST"),
    body: fc.uint8Array({ maxLength: 40 }),
  })
  .map((spec) => {
    // Framing headers come only from `framing`, so the head is unambiguous; the random ones must not collide.
    const headers = spec.headers.filter(([name]) => !/^(content-length|transfer-encoding)$/i.test(name));
    if (spec.framing === "length") headers.push(["Content-Length", String(spec.length)]);
    if (spec.framing === "chunked" && spec.minor === "1") headers.push(["Transfer-Encoding", "chunked"]);
    const statusLine = `HTTP/1.${spec.minor} ${spec.status}${spec.reason === undefined ? "" : ` ${spec.reason}`}`;
    const head = latin1(`${statusLine}\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`);
    return { ...spec, headers, head, bytes: Buffer.concat([head, spec.body]) };
  });

/** Mutations in the manner of http-garden: bytes flipped, CR/LF/space/colon/NUL inserted, pieces dropped or repeated. */
const SPECIAL = [0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x00, 0x7f, 0xff, 0x30, 0x2c, 0x3b];
const mutation = fc.oneof(
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(...SPECIAL), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(...SPECIAL), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant("repeat" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 30 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const at = out.length ? m.at % (out.length + 1) : 0;
    if (m.op === "set" && out.length) out[at % out.length] = m.byte;
    else if (m.op === "insert") out = Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)]);
    else if (m.op === "delete") out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
    else if (m.op === "repeat") out = Buffer.concat([out.subarray(0, at + m.length), out.subarray(at)]);
  }
  return out;
}
const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 });

describe("response head reader fuzz", () => {
  it("reads a valid head the same in any number of pieces as in one", () => {
    return fc.assert(
      yielding(validHead, cuts, (spec, at) => {
        const whole = readHead(spec.bytes, spec.method);
        if (spec.head.length > MAX_HEAD_BYTES) return;
        expect(whole.kind).toBe("head");
        const { head, bodyOffset } = (whole as { value: ReturnType<typeof parseResponseHead> & object }).value;
        expect(bodyOffset).toBe(spec.head.length);
        expect(head.status).toBe(spec.status);
        expect(head.reason).toBe(spec.reason ?? "");
        expect(head.headers).toEqual(spec.headers.flat());
        const expected =
          spec.method === "HEAD" || spec.status < 200 || spec.status === 204 || spec.status === 304
            ? { kind: "none" }
            : spec.framing === "length"
              ? { kind: "length", length: spec.length }
              : spec.framing === "chunked" && spec.minor === "1"
                ? { kind: "chunked" }
                : { kind: "close" };
        expect(head.framing).toEqual(expected);
        expect(readHeadInPieces(spec.bytes, at, spec.method)).toEqual(whole);
      }),
      fuzzParameters(300),
    );
  });

  it("meets mutated heads with a head or an UpstreamProtocolError, the same however the bytes are cut", () => {
    return fc.assert(
      yielding(validHead, mutations, cuts, (spec, changes, at) => {
        const bytes = mutate(spec.bytes, changes);
        const whole = readHead(bytes, spec.method);
        const split = readHeadInPieces(bytes, at, spec.method);
        // A head that reads whole is read the same in pieces: a prefix is never refused for what comes later.
        if (whole.kind === "head") expect(split).toEqual(whole);
        // A head refused whole may be refused earlier in pieces (a bare LF is seen before the blank line), never accepted.
        if (whole.kind === "refused") expect(split.kind).toBe("refused");
        if (whole.kind === "head") {
          const { head } = whole.value as { head: { headers: string[]; framing: { kind: string } } };
          // Whatever it let through has no byte that could split a line downstream.
          for (const field of head.headers) expect(field).not.toMatch(/[\r\n\0]/);
        }
      }),
      fuzzParameters(2000),
    );
  });

  it("meets arbitrary bytes the same way", () => {
    const noise = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.concat([latin1("HTTP/1.1 200 OK\r\n"), b])));
    return fc.assert(
      yielding(noise, cuts, fc.constantFrom("GET", "HEAD"), (bytes, at, method) => {
        const whole = readHead(bytes, method);
        const split = readHeadInPieces(bytes, at, method);
        if (whole.kind === "head") expect(split).toEqual(whole);
        if (whole.kind === "refused") expect(split.kind).toBe("refused");
      }),
      fuzzParameters(2000),
    );
  });
});

/* ------------------------------------------------------------ chunked body */

type BodyOutcome = { data: string; used: number; done: boolean; error?: string };

/** Feeds the pieces in order, as the connection does; stops at the first error or once the body is done. */
function decode(input: readonly Buffer[]): BodyOutcome {
  const decoder = new ChunkedDecoder();
  const data: Buffer[] = [];
  let used = 0;
  for (const piece of input) {
    if (decoder.done) break;
    try {
      // onData hands views into the piece: copy, as the connection's consumer must before the next read.
      const n = decoder.write(piece, (chunk) => void data.push(Buffer.from(chunk)));
      expect(n).toBeGreaterThanOrEqual(0);
      expect(n).toBeLessThanOrEqual(piece.length);
      if (!decoder.done) expect(n).toBe(piece.length);
      used += n;
    } catch (error) {
      if (!(error instanceof UpstreamProtocolError)) throw new Error(`a foreign error from ChunkedDecoder: ${String(error)}`, { cause: error });
      // Where in a piece the fault was found is not part of the outcome: only that it was, and what came before.
      return { data: Buffer.concat(data).toString("hex"), used: -1, done: false, error: error.message };
    }
  }
  return { data: Buffer.concat(data).toString("hex"), used, done: decoder.done };
}

const extension = fc.string({ unit: chars(`${TCHARS}=" \t;`), maxLength: 20 }).map((text) => `;${text}`);
const chunkedBody = fc
  .record({
    chunks: fc.array(fc.record({ data: fc.uint8Array({ minLength: 1, maxLength: 60 }), ext: fc.option(extension, { nil: undefined }), upper: fc.boolean(), zeros: fc.nat(3) }), { maxLength: 8 }),
    trailers: fc.array(fc.tuple(token, fieldValue), { maxLength: 3 }),
    after: fc.uint8Array({ maxLength: 20 }),
  })
  .map(({ chunks, trailers, after }) => {
    const parts: Buffer[] = [];
    for (const chunk of chunks) {
      const size = chunk.data.length.toString(16);
      parts.push(latin1(`${"0".repeat(chunk.zeros)}${chunk.upper ? size.toUpperCase() : size}${chunk.ext ?? ""}\r\n`), Buffer.from(chunk.data), latin1("\r\n"));
    }
    parts.push(latin1(`0\r\n${trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`));
    const body = Buffer.concat(parts);
    return { body, data: Buffer.concat(chunks.map((c) => c.data)), after: Buffer.from(after), bytes: Buffer.concat([body, after]) };
  });

describe("chunked decoder fuzz", () => {
  it("decodes a valid body the same in any number of pieces as in one, and stops at its end", () => {
    return fc.assert(
      yielding(chunkedBody, cuts, (spec, at) => {
        const whole = decode([spec.bytes]);
        expect(whole).toEqual({ data: spec.data.toString("hex"), used: spec.body.length, done: true });
        expect(decode(pieces(spec.bytes, at))).toEqual(whole);
        // One byte at a time: the hardest split there is.
        expect(decode([...spec.bytes].map((byte) => Buffer.from([byte])))).toEqual(whole);
      }),
      fuzzParameters(200),
    );
  });

  it("meets mutated bodies with data or an UpstreamProtocolError, the same however the bytes are cut", () => {
    return fc.assert(
      yielding(chunkedBody, mutations, cuts, (spec, changes, at) => {
        const bytes = mutate(spec.bytes, changes);
        const whole = decode([bytes]);
        const split = decode(pieces(bytes, at));
        // Errors may name the same fault differently only if the data before it differs: compare everything.
        expect(split).toEqual(whole);
      }),
      fuzzParameters(2000),
    );
  });

  it("meets arbitrary bytes the same way", () => {
    const noise = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.array(fc.constantFrom("0", "1", "a", "F", "\r", "\n", ";", " ", "x", "\r\n", "0\r\n\r\n"), { maxLength: 40 }).map((parts) => latin1(parts.join(""))),
    );
    return fc.assert(
      yielding(noise, cuts, (bytes, at) => {
        expect(decode(pieces(bytes, at))).toEqual(decode([bytes]));
      }),
      fuzzParameters(2000),
    );
  });
});
