/**
 * The proxy's own HTTP/1.1 client, its two parsers on their own: the
 * response head (parseResponseHead) and the chunked body (ChunkedDecoder).
 * Both must be strict — a worker's response that could be read two ways is
 * refused (502), never guessed at (the reliability matrix U4, the smuggling table's
 * rules applied to responses) — and must not depend on how the bytes were
 * split into reads: every input is also fed in pieces.
 */
import { describe, expect, it } from "vitest";
import { MAX_HEAD_BYTES, parseResponseHead, UpstreamProtocolError } from "../../src/proxy/upstream/response-head.ts";
import { ChunkedDecoder } from "../../src/proxy/upstream/chunked-decoder.ts";

const bytes = (text: string) => Buffer.from(text, "latin1");

/** Parses a head given as text (latin1), for a GET unless told. */
function parse(text: string, method = "GET") {
  return parseResponseHead(bytes(text), method);
}

/** The head's headers as [name, value] pairs. */
function pairs(headers: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < headers.length; i += 2) out.push([headers[i]!, headers[i + 1]!]);
  return out;
}

describe("parseResponseHead: heads it accepts", () => {
  it("an ordinary 200 with Content-Length: status, reason, headers in order, length framing, kept alive, body offset", () => {
    const text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello";
    const parsed = parse(text)!;
    expect(parsed).toBeDefined();
    expect(parsed.head.status).toBe(200);
    expect(parsed.head.reason).toBe("OK");
    expect(pairs(parsed.head.headers)).toEqual([
      ["Content-Type", "text/plain"],
      ["Content-Length", "5"],
      ["X-A", "1"],
    ]);
    expect(parsed.head.framing).toEqual({ kind: "length", length: 5 });
    expect(parsed.head.keepAlive).toBe(true);
    expect(parsed.bodyOffset).toBe(text.length - 5);
  });

  it("optional whitespace around a value is not part of it; an empty value and an empty reason are fine", () => {
    const parsed = parse("HTTP/1.1 404 \r\nX-Pad: \t padded \t\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n")!;
    expect(parsed.head.status).toBe(404);
    expect(parsed.head.reason).toBe("");
    expect(pairs(parsed.head.headers)).toEqual([
      ["X-Pad", "padded"],
      ["X-Empty", ""],
      ["Content-Length", "0"],
    ]);
  });

  it("a status line without a reason phrase", () => {
    const parsed = parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")!;
    expect(parsed.head.status).toBe(200);
    expect(parsed.head.reason).toBe("");
  });

  it("chunked framing, whatever the case of its name and value", () => {
    expect(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")!.head.framing).toEqual({ kind: "chunked" });
    expect(parse("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n")!.head.framing).toEqual({ kind: "chunked" });
  });

  it("no Content-Length and no Transfer-Encoding: read until close, and the connection is not reused", () => {
    const { head } = parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")!;
    expect(head.framing).toEqual({ kind: "close" });
    expect(head.keepAlive).toBe(false);
  });

  it("HTTP/1.0: closed after the response unless it says keep-alive", () => {
    const plain = parse("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")!.head;
    expect(plain.framing).toEqual({ kind: "length", length: 2 });
    expect(plain.keepAlive).toBe(false);
    const kept = parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok")!.head;
    expect(kept.keepAlive).toBe(true);
    // Keep-alive without a length cannot be kept: the body ends at the close.
    const unframed = parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n")!.head;
    expect(unframed.framing).toEqual({ kind: "close" });
    expect(unframed.keepAlive).toBe(false);
  });

  it("HTTP/1.1 with Connection: close is not reused", () => {
    expect(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")!.head.keepAlive).toBe(false);
  });

  it.each([
    ["204", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", "GET"],
    ["304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET"],
    ["204 that says chunked", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", "GET"],
    ["a HEAD request's 200 with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HEAD"],
    ["a HEAD request's 200 with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD"],
    ["a HEAD request's 200 with no framing at all", "HTTP/1.1 200 OK\r\n\r\n", "HEAD"],
  ])("%s: no body, and the connection stays reusable", (_what, text, method) => {
    const { head, bodyOffset } = parse(text, method)!;
    expect(head.framing).toEqual({ kind: "none" });
    expect(head.keepAlive).toBe(true);
    expect(bodyOffset).toBe(text.length);
  });

  it("a HEAD answer keeps its Content-Length header for the client", () => {
    const { head } = parse("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HEAD")!;
    expect(pairs(head.headers)).toEqual([["Content-Length", "1000"]]);
  });

  it("1xx interim responses have no body, and the bytes after them are the next head", () => {
    const text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const first = parse(text)!;
    expect(first.head.status).toBe(100);
    expect(first.head.framing).toEqual({ kind: "none" });
    const second = parseResponseHead(bytes(text).subarray(first.bodyOffset), "GET")!;
    expect(second.head.status).toBe(200);
    expect(second.head.framing).toEqual({ kind: "length", length: 2 });
    const hints = parse("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")!;
    expect(hints.head.status).toBe(103);
    expect(hints.head.framing).toEqual({ kind: "none" });
  });

  it("a repeated Set-Cookie stays two headers, in order", () => {
    const { head } = parse("HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nContent-Length: 0\r\nSet-Cookie: b=2, c=3\r\n\r\n")!;
    expect(pairs(head.headers).filter(([name]) => name === "Set-Cookie")).toEqual([
      ["Set-Cookie", "a=1; Path=/"],
      ["Set-Cookie", "b=2, c=3"],
    ]);
  });

  it("Connection tokens: lowercase, trimmed, from every Connection header", () => {
    const { head } = parse("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, X-Secret\r\nConnection: ,  x-other ,\r\nContent-Length: 0\r\n\r\n")!;
    expect(head.connectionTokens).toEqual(["keep-alive", "x-secret", "x-other"]);
    expect(head.keepAlive).toBe(true);
    expect(parse("HTTP/1.1 200 OK\r\nConnection: X-A, Close\r\nContent-Length: 0\r\n\r\n")!.head.keepAlive).toBe(false);
    expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")!.head.connectionTokens).toEqual([]);
  });

  it("obs-text (bytes 0x80-0xff) in a value is passed on as it came", () => {
    const { head } = parse("HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 0\r\n\r\n")!;
    expect(pairs(head.headers)).toContainEqual(["X-Name", "caf\xe9"]);
  });

  it("a head cut at every byte boundary: undefined until the blank line has arrived, then the same answer", () => {
    const text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 4\r\n\r\nbody";
    const whole = parse(text)!;
    const headEnd = text.indexOf("\r\n\r\n") + 4;
    for (let cut = 0; cut < headEnd; cut++) {
      expect(parseResponseHead(bytes(text.slice(0, cut)), "GET"), `cut at ${cut}`).toBeUndefined();
    }
    for (let cut = headEnd; cut <= text.length; cut++) {
      expect(parseResponseHead(bytes(text.slice(0, cut)), "GET"), `cut at ${cut}`).toEqual(whole);
    }
  });

  it("a head of exactly MAX_HEAD_BYTES (blank line included) is accepted", () => {
    const start = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Fill: ";
    const text = `${start}${"a".repeat(MAX_HEAD_BYTES - start.length - 4)}\r\n\r\n`;
    expect(text.length).toBe(MAX_HEAD_BYTES);
    expect(parse(text)!.bodyOffset).toBe(MAX_HEAD_BYTES);
  });
});

describe("parseResponseHead: heads it refuses (UpstreamProtocolError, a 502)", () => {
  const refused: Array<[string, string]> = [
    // Framing that two readers could read two ways.
    ["two Content-Length, different", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
    ["two Content-Length, identical", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"],
    ["a Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"],
    ["Content-Length and Transfer-Encoding", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["Transfer-Encoding and Content-Length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"],
    ["Transfer-Encoding: gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"],
    ["Transfer-Encoding: chunked, gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"],
    ["Transfer-Encoding: gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"],
    ["Transfer-Encoding: xchunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n"],
    ["Transfer-Encoding: identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n"],
    ["two Transfer-Encoding: chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
    // Content-Length values that are not plain digits.
    ["Content-Length 1a", "HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n"],
    ["Content-Length -1", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
    ["Content-Length +1", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n"],
    ["Content-Length 0x10", "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n"],
    ["Content-Length 1e3", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n"],
    ["Content-Length 4 2", "HTTP/1.1 200 OK\r\nContent-Length: 4 2\r\n\r\n"],
    ["Content-Length of a space", "HTTP/1.1 200 OK\r\nContent-Length:  \r\n\r\n"],
    ["Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"],
    ["Content-Length of 16 digits", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n"],
    ["Content-Length of 22 digits", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000000\r\n\r\n"],
    ["Content-Length in fullwidth digits", "HTTP/1.1 200 OK\r\nContent-Length: \xef\xbc\x95\r\n\r\n"],
    // Line syntax.
    ["obs-fold (space)", "HTTP/1.1 200 OK\r\nX-A: 1\r\n continued\r\nContent-Length: 0\r\n\r\n"],
    ["obs-fold (tab)", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\tcontinued\r\nContent-Length: 0\r\n\r\n"],
    ["obs-fold hiding a Content-Length", "HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 5\r\n\r\n"],
    ["a bare LF inside the headers", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 5\r\n\r\n"],
    ["a bare LF ending the status line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"],
    ["a head with only bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"],
    ["a head ended by LF CRLF", "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"],
    ["a header name with a space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"],
    ["a header name with a space inside", "HTTP/1.1 200 OK\r\nX Y: 1\r\nContent-Length: 0\r\n\r\n"],
    ["an empty header name", "HTTP/1.1 200 OK\r\n: value\r\nContent-Length: 0\r\n\r\n"],
    ["a header line without a colon", "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n"],
    ["a header name with a non-token character", "HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 0\r\n\r\n"],
    ["a lone CR line before the blank line", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rX: y\r\n\r\n"],
    // Control characters in a value.
    ["NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"],
    ["NUL ending a value", "HTTP/1.1 200 OK\r\nX-A: ab\x00\r\nContent-Length: 0\r\n\r\n"],
    ["CR inside a value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n"],
    ["CR ending a value", "HTTP/1.1 200 OK\r\nX-A: ab\r\r\nContent-Length: 0\r\n\r\n"],
    ["CR starting a value", "HTTP/1.1 200 OK\r\nX-A:\rab\r\nContent-Length: 0\r\n\r\n"],
    ["CR ending a Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\r\n\r\n"],
    ["DEL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 0\r\n\r\n"],
    ["another control character in a value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n"],
    // Status lines.
    ["HTTP/2 200", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["HTTP/1.1 20", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"],
    ["HTTP/1.1 2000", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"],
    ["HTTP/1.1 099", "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n"],
    ["ICY 200 OK", "ICY 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["HTTP/1.2 200", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["http/1.1 200 (lowercase)", "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["two spaces after the version", "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["a leading empty line", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["NUL in the reason phrase", "HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n"],
    ["a control character in the reason phrase", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n"],
  ];

  it.each(refused)("%s", (_what, text) => {
    expect(() => parse(text)).toThrow(UpstreamProtocolError);
  });

  it("the framing checks hold for a HEAD answer and a 204 too (the head is still ambiguous)", () => {
    expect(() => parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "HEAD")).toThrow(UpstreamProtocolError);
    expect(() => parse("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n")).toThrow(UpstreamProtocolError);
  });

  it("a head over MAX_HEAD_BYTES, complete: refused", () => {
    const text = `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(MAX_HEAD_BYTES)}\r\nContent-Length: 0\r\n\r\n`;
    expect(() => parse(text)).toThrow(UpstreamProtocolError);
  });

  it("a head one byte over MAX_HEAD_BYTES, complete: refused", () => {
    const start = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Fill: ";
    const text = `${start}${"a".repeat(MAX_HEAD_BYTES - start.length - 3)}\r\n\r\n`;
    expect(text.length).toBe(MAX_HEAD_BYTES + 1);
    expect(() => parse(text)).toThrow(UpstreamProtocolError);
  });

  it("a head over MAX_HEAD_BYTES whose end has not arrived yet: refused without waiting for it", () => {
    const start = `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(MAX_HEAD_BYTES)}`;
    expect(() => parse(start)).toThrow(UpstreamProtocolError);
    // Up to the limit, more bytes may still complete a head.
    expect(parse(start.slice(0, MAX_HEAD_BYTES))).toBeUndefined();
  });

  it("the error is an UpstreamProtocolError with a message saying what was wrong", () => {
    let caught: unknown;
    try {
      parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UpstreamProtocolError);
    expect((caught as Error).name).toBe("UpstreamProtocolError");
    expect((caught as Error).message).toMatch(/Content-Length/);
  });
});

// ---- ChunkedDecoder ----

/** Feeds `input` to a fresh decoder in pieces ending at `cuts`; returns the decoded body, the bytes used, and whether it is done. */
function decode(input: Buffer, cuts: readonly number[] = []): { body: Buffer; used: number; done: boolean } {
  const decoder = new ChunkedDecoder();
  const out: Buffer[] = [];
  let used = 0;
  let from = 0;
  for (const to of [...cuts.filter((cut) => cut > 0 && cut < input.byteLength), input.byteLength]) {
    const piece = input.subarray(from, to);
    // Copy each piece: the decoder hands out views, and a caller may reuse its buffer.
    used += decoder.write(piece, (data) => out.push(Buffer.from(data)));
    from = to;
  }
  return { body: Buffer.concat(out), used, done: decoder.done };
}

/** Feeds `input` one byte at a time. */
function decodeByteByByte(input: Buffer): { body: Buffer; used: number; done: boolean } {
  return decode(
    input,
    Array.from({ length: input.byteLength }, (_, i) => i + 1),
  );
}

/** A small seeded PRNG (mulberry32): the same "random" cases on every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("ChunkedDecoder: bodies it decodes", () => {
  it("plain chunks, then the last chunk", () => {
    const input = bytes("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    expect(decode(input)).toEqual({ body: bytes("hello world"), used: input.byteLength, done: true });
  });

  it("hex sizes in either case", () => {
    const data = "x".repeat(0x1a) + "y".repeat(0xaf);
    const input = bytes(`1a\r\n${"x".repeat(0x1a)}\r\nAF\r\n${"y".repeat(0xaf)}\r\n0\r\n\r\n`);
    expect(decode(input).body.toString("latin1")).toBe(data);
  });

  it("chunk extensions are skipped", () => {
    const input = bytes('5;name=value;quoted="a;b"\r\nhello\r\n3;x\r\nabc\r\n0;last=1\r\n\r\n');
    expect(decode(input)).toEqual({ body: bytes("helloabc"), used: input.byteLength, done: true });
  });

  it("trailers are read and dropped", () => {
    const input = bytes("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n");
    expect(decode(input)).toEqual({ body: bytes("hello"), used: input.byteLength, done: true });
  });

  it("an empty body (only the last chunk)", () => {
    expect(decode(bytes("0\r\n\r\n"))).toEqual({ body: Buffer.alloc(0), used: 5, done: true });
  });

  it("leading zeros in a size", () => {
    expect(decode(bytes("0005\r\nhello\r\n000\r\n\r\n")).body.toString()).toBe("hello");
  });

  it("data containing CR, LF and bytes that look like chunk syntax is passed through untouched", () => {
    const data = "0\r\n\r\n\r\n5\r\n";
    const input = bytes(`${data.length.toString(16)}\r\n${data}\r\n0\r\n\r\n`);
    expect(decode(input).body.toString("latin1")).toBe(data);
  });

  it("bytes after the last chunk are not consumed: write() says how many belonged to the body", () => {
    const body = "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
    const input = bytes(`${body}HTTP/1.1 200 OK\r\n\r\n`);
    const decoder = new ChunkedDecoder();
    const out: Buffer[] = [];
    expect(decoder.write(input, (data) => out.push(Buffer.from(data)))).toBe(body.length);
    expect(decoder.done).toBe(true);
    expect(Buffer.concat(out).toString()).toBe("hello");
    // Once done, nothing more is taken.
    expect(decoder.write(bytes("more"), () => undefined)).toBe(0);
  });

  it("not done until the final CRLF has arrived", () => {
    const decoder = new ChunkedDecoder();
    const out: Buffer[] = [];
    for (const piece of ["5\r\nhel", "lo\r\n", "0\r\n", "X-T: 1\r\n", "\r"]) {
      expect(decoder.write(bytes(piece), (data) => out.push(Buffer.from(data)))).toBe(piece.length);
      expect(decoder.done).toBe(false);
    }
    expect(decoder.write(bytes("\nextra"), (data) => out.push(Buffer.from(data)))).toBe(1);
    expect(decoder.done).toBe(true);
    expect(Buffer.concat(out).toString()).toBe("hello");
  });

  it("fed one byte at a time, with extensions, trailers and extra bytes after the end", () => {
    const body = '5;a=b\r\nhello\r\n10;ext="x"\r\n0123456789abcdef\r\n0;z\r\nX-T: 1\r\nX-U: 2\r\n\r\n';
    const input = bytes(`${body}EXTRA`);
    expect(decodeByteByByte(input)).toEqual({ body: bytes("hello0123456789abcdef"), used: body.length, done: true });
  });

  it("many random bodies, encoded with random chunks, extensions and trailers, split at random points: the output is the original", () => {
    const random = prng(0x7e57);
    const int = (below: number) => Math.floor(random() * below);
    for (let round = 0; round < 500; round++) {
      const original = Buffer.alloc(int(3000));
      for (let i = 0; i < original.byteLength; i++) original[i] = int(256);
      // Encode with chunks of random sizes, some with extensions, hex in random case.
      const parts: Buffer[] = [];
      for (let at = 0; at < original.byteLength; ) {
        const size = Math.min(original.byteLength - at, 1 + int(700));
        let sizeText = size.toString(16);
        if (random() < 0.5) sizeText = sizeText.toUpperCase();
        if (random() < 0.2) sizeText = `00${sizeText}`;
        const extension = random() < 0.3 ? `;ext${int(100)}=${int(1000)}` : "";
        parts.push(bytes(`${sizeText}${extension}\r\n`), original.subarray(at, at + size), bytes("\r\n"));
        at += size;
      }
      parts.push(bytes(random() < 0.3 ? "0;end\r\n" : "0\r\n"));
      const trailers = int(3);
      for (let t = 0; t < trailers; t++) parts.push(bytes(`X-Trailer-${t}: ${int(1e6)}\r\n`));
      parts.push(bytes("\r\n"));
      const encoded = Buffer.concat(parts);
      const extra = random() < 0.5 ? bytes("HTTP/1.1 200 OK\r\n") : Buffer.alloc(0);
      const input = Buffer.concat([encoded, extra]);
      const cuts = Array.from({ length: int(12) }, () => int(input.byteLength + 1)).sort((a, b) => a - b);
      const decoded = decode(input, cuts);
      expect(decoded.done, `round ${round}`).toBe(true);
      expect(decoded.used, `round ${round}`).toBe(encoded.byteLength);
      expect(decoded.body.equals(original), `round ${round}: decoded body differs`).toBe(true);
    }
  });
});

describe("ChunkedDecoder: bodies it refuses (UpstreamProtocolError)", () => {
  const refused: Array<[string, string]> = [
    ["size 0x10", "0x10\r\n0123456789abcdef\r\n0\r\n\r\n"],
    ["size -1", "-1\r\nx\r\n0\r\n\r\n"],
    ["a space before the size", " 5\r\nhello\r\n0\r\n\r\n"],
    ["a space after the size", "5 \r\nhello\r\n0\r\n\r\n"],
    ["a tab after the size", "5\t\r\nhello\r\n0\r\n\r\n"],
    ["a non-hex size", "g\r\nhello\r\n0\r\n\r\n"],
    ["a hex size followed by junk", "5g\r\nhello\r\n0\r\n\r\n"],
    ["an empty size line", "\r\nhello\r\n0\r\n\r\n"],
    ["an underscore in the size", "0_5\r\nhello\r\n0\r\n\r\n"],
    ["chunk data not followed by CRLF", "5\r\nhelloXX0\r\n\r\n"],
    ["chunk data followed by CR alone", "5\r\nhello\rX0\r\n\r\n"],
    ["more data than the size says", "3\r\nhello\r\n0\r\n\r\n"],
    ["chunk data followed by a bare LF", "5\r\nhello\n0\r\n\r\n"],
    ["a size line ended by a bare LF", "5\nhello\r\n0\r\n\r\n"],
    ["a size line ended by CR alone", "5\rhello\r\n0\r\n\r\n"],
    ["a bare LF in a chunk extension", "5;a\nb\r\nhello\r\n0\r\n\r\n"],
    ["the last chunk ended by a bare LF", "5\r\nhello\r\n0\n\r\n"],
    ["a bare LF ending the body", "5\r\nhello\r\n0\r\n\n"],
    ["a bare LF in a trailer", "5\r\nhello\r\n0\r\nX-T: a\nb\r\n\r\n"],
    ["a trailer line ended by a bare LF", "5\r\nhello\r\n0\r\nX-T: 1\n\r\n"],
    ["a trailer line ended by CR alone", "5\r\nhello\r\n0\r\nX-T: 1\rX\r\n\r\n"],
    ["a size of 16 hex digits", "1000000000000000\r\nx\r\n0\r\n\r\n"],
    ["a size of 40 hex digits", `${"f".repeat(40)}\r\nx\r\n0\r\n\r\n`],
  ];

  it.each(refused)("%s (whole)", (_what, text) => {
    expect(() => decode(bytes(text))).toThrow(UpstreamProtocolError);
  });

  it.each(refused)("%s (one byte at a time)", (_what, text) => {
    expect(() => decodeByteByByte(bytes(text))).toThrow(UpstreamProtocolError);
  });

  it("oversize trailers: refused, whole or byte by byte", () => {
    const text = `5\r\nhello\r\n0\r\n${Array.from({ length: 40 }, (_, i) => `X-T${i}: ${"v".repeat(1000)}\r\n`).join("")}\r\n`;
    expect(() => decode(bytes(text))).toThrow(UpstreamProtocolError);
    expect(() => decodeByteByByte(bytes(text))).toThrow(UpstreamProtocolError);
    // One huge trailer line without its end yet is refused too, not buffered forever.
    expect(() => decode(bytes(`0\r\nX-T: ${"v".repeat(64 * 1024)}`))).toThrow(UpstreamProtocolError);
  });

  it("a refused body gives no data past the fault", () => {
    const out: string[] = [];
    const decoder = new ChunkedDecoder();
    expect(() => decoder.write(bytes("5\r\nhello\r\nzz\r\nsecret\r\n0\r\n\r\n"), (data) => out.push(data.toString()))).toThrow(UpstreamProtocolError);
    expect(out.join("")).toBe("hello");
  });
});
