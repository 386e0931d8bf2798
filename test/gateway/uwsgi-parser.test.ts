/**
 * Unit tests of the uwsgi packet parser (src/gateway/uwsgi/parser.ts): packets
 * built byte by byte, fed whole and split at every boundary; one table row per
 * error class; and a seeded fuzz that may only ever see our own errors.
 */
import { describe, expect, it } from "vitest";
import {
  encodeUwsgiPacket,
  MAX_UWSGI_VARS,
  MAX_VARS_BLOCK_SIZE,
  parseUwsgiPacket,
  type UwsgiLimits,
  type UwsgiParseResult,
} from "../../src/gateway/uwsgi/parser.ts";
import {
  InvalidUwsgiHeader,
  TooManyUwsgiVars,
  UnsupportedModifier,
  UwsgiError,
  UwsgiPacketTooLarge,
} from "../../src/gateway/uwsgi/errors.ts";

/** A var as raw bytes: u16le name length, name, u16le value length, value. */
function rawVar(name: string, value: string | Buffer): Buffer {
  const nameBytes = Buffer.from(name, "latin1");
  const valueBytes = typeof value === "string" ? Buffer.from(value, "latin1") : value;
  const out = Buffer.alloc(4 + nameBytes.length + valueBytes.length);
  out.writeUInt16LE(nameBytes.length, 0);
  nameBytes.copy(out, 2);
  out.writeUInt16LE(valueBytes.length, 2 + nameBytes.length);
  valueBytes.copy(out, 4 + nameBytes.length);
  return out;
}

/** A packet header + block, with the datasize taken from the block unless given. */
function packet(block: Buffer, modifier1 = 0, modifier2 = 0, datasize = block.length): Buffer {
  const header = Buffer.from([modifier1, datasize & 0xff, (datasize >> 8) & 0xff, modifier2]);
  return Buffer.concat([header, block]);
}

function varsOf(result: UwsgiParseResult): Array<[string, string]> {
  if (result.status !== "complete") throw new Error(`expected a complete packet, got ${JSON.stringify(result)}`);
  return result.vars.map(([name, value]) => [name, value.toString("latin1")]);
}

/** What nginx sends for `GET /a%20b?x=1` with `include uwsgi_params` (abridged). */
const NGINX_GET: Array<[string, string]> = [
  ["QUERY_STRING", "x=1"],
  ["REQUEST_METHOD", "GET"],
  ["CONTENT_TYPE", ""],
  ["CONTENT_LENGTH", ""],
  ["REQUEST_URI", "/a%20b?x=1"],
  ["PATH_INFO", "/a b"],
  ["DOCUMENT_ROOT", "/etc/nginx/html"],
  ["SERVER_PROTOCOL", "HTTP/1.1"],
  ["REQUEST_SCHEME", "http"],
  ["REMOTE_ADDR", "127.0.0.1"],
  ["REMOTE_PORT", "51234"],
  ["SERVER_PORT", "8080"],
  ["SERVER_NAME", "localhost"],
  ["HTTP_HOST", "localhost"],
  ["HTTP_X_FORWARDED_FOR", "foo"],
  ["HTTP_X_FORWARDED_FOR", "bar"],
];

describe("parseUwsgiPacket: valid packets", () => {
  const cases: Array<{ name: string; bytes: Buffer; vars: Array<[string, string]>; consumed: number }> = [
    { name: "an empty vars block", bytes: packet(Buffer.alloc(0)), vars: [], consumed: 4 },
    {
      name: "one var",
      bytes: packet(rawVar("REQUEST_METHOD", "GET")),
      vars: [["REQUEST_METHOD", "GET"]],
      consumed: 4 + 2 + 14 + 2 + 3,
    },
    {
      name: "an empty value",
      bytes: packet(rawVar("CONTENT_LENGTH", "")),
      vars: [["CONTENT_LENGTH", ""]],
      consumed: 4 + 2 + 14 + 2,
    },
    {
      name: "nginx's GET with repeated headers, in order",
      bytes: packet(Buffer.concat(NGINX_GET.map(([n, v]) => rawVar(n, v)))),
      vars: NGINX_GET,
      consumed: 4 + NGINX_GET.reduce((sum, [n, v]) => sum + 4 + n.length + v.length, 0),
    },
    {
      name: "a value with every byte 0..255 (values are opaque bytes)",
      bytes: packet(rawVar("X", Buffer.from(Array.from({ length: 256 }, (_, i) => i)))),
      vars: [["X", Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1")]],
      consumed: 4 + 2 + 1 + 2 + 256,
    },
  ];

  for (const { name, bytes, vars, consumed } of cases) {
    it(`parses ${name}`, () => {
      const result = parseUwsgiPacket(bytes);
      expect(varsOf(result)).toEqual(vars);
      expect(result.status === "complete" && result.consumed).toBe(consumed);
    });

    it(`parses ${name} split at every byte boundary`, () => {
      for (let cut = 0; cut < bytes.length; cut++) {
        const head = parseUwsgiPacket(bytes.subarray(0, cut));
        expect(head.status, `cut at ${cut}`).toBe("incomplete");
        // What it asks for is never more than the packet, and never less than it has: it is making progress.
        const needed = head.status === "incomplete" ? head.needed : 0;
        expect(needed).toBeGreaterThan(cut);
        expect(needed).toBeLessThanOrEqual(bytes.length);
      }
      expect(varsOf(parseUwsgiPacket(bytes))).toEqual(vars);
    });
  }

  it("stops at the end of the packet: the bytes after it are the body", () => {
    const bytes = Buffer.concat([packet(rawVar("CONTENT_LENGTH", "5")), Buffer.from("hello")]);
    const result = parseUwsgiPacket(bytes);
    expect(result.status === "complete" && bytes.subarray(result.consumed).toString()).toBe("hello");
  });

  it("reads a plain Uint8Array as well as a Buffer", () => {
    const bytes = new Uint8Array(packet(rawVar("A", "b")));
    expect(varsOf(parseUwsgiPacket(bytes))).toEqual([["A", "b"]]);
  });

  it("accepts a block of exactly maxVarsSize and exactly maxVars vars", () => {
    const block = Buffer.concat([rawVar("A", "1"), rawVar("B", "2")]);
    expect(varsOf(parseUwsgiPacket(packet(block), { maxVarsSize: block.length, maxVars: 2 }))).toHaveLength(2);
  });

  it("round-trips encodeUwsgiPacket (string values as UTF-8)", () => {
    const bytes = encodeUwsgiPacket([
      ["PATH_INFO", "/café"],
      ["HTTP_X", Buffer.from([0, 255])],
    ]);
    const result = parseUwsgiPacket(bytes);
    expect(result.status).toBe("complete");
    if (result.status !== "complete") return;
    expect(result.vars[0]![1].toString("utf8")).toBe("/café");
    expect([...result.vars[1]![1]]).toEqual([0, 255]);
    expect(result.consumed).toBe(bytes.length);
  });

  it("has the protocol's limits as its defaults", () => {
    expect(MAX_VARS_BLOCK_SIZE).toBe(65535);
    expect(MAX_UWSGI_VARS).toBe(1000);
    const full = Buffer.alloc(MAX_VARS_BLOCK_SIZE);
    // One var filling the whole 64 KiB block: name "A", value of the rest.
    rawVar("A", Buffer.alloc(MAX_VARS_BLOCK_SIZE - 5)).copy(full);
    expect(varsOf(parseUwsgiPacket(packet(full)))[0]![1]).toHaveLength(MAX_VARS_BLOCK_SIZE - 5);
  });
});

describe("parseUwsgiPacket: errors", () => {
  const manyVars = Buffer.concat(Array.from({ length: MAX_UWSGI_VARS + 1 }, () => rawVar("A", "")));
  const cases: Array<{ name: string; bytes: Buffer; limits?: UwsgiLimits; error: new (...args: never[]) => UwsgiError; message: RegExp }> = [
    {
      name: "modifier1 other than 0",
      bytes: packet(Buffer.alloc(0), 30),
      error: UnsupportedModifier,
      message: /modifier1=30 modifier2=0/,
    },
    {
      name: "modifier2 other than 0",
      bytes: packet(Buffer.alloc(0), 0, 1),
      error: UnsupportedModifier,
      message: /modifier1=0 modifier2=1/,
    },
    {
      name: "an unsupported modifier from the header alone (no block sent yet)",
      bytes: Buffer.from([100, 0xff, 0xff, 0]),
      error: UnsupportedModifier,
      message: /modifier1=100/,
    },
    {
      name: "a vars block over maxVarsSize, from the header alone",
      bytes: Buffer.from([0, 0x01, 0x04, 0]), // datasize 1025
      limits: { maxVarsSize: 1024 },
      error: UwsgiPacketTooLarge,
      message: /1025 bytes is over the limit of 1024/,
    },
    {
      name: "more vars than MAX_UWSGI_VARS",
      bytes: packet(manyVars),
      error: TooManyUwsgiVars,
      message: /more than 1000 vars/,
    },
    {
      name: "more vars than a lowered maxVars",
      bytes: packet(Buffer.concat([rawVar("A", ""), rawVar("B", ""), rawVar("C", "")])),
      limits: { maxVars: 2 },
      error: TooManyUwsgiVars,
      message: /more than 2 vars/,
    },
    {
      name: "a name length running past the block",
      bytes: packet(Buffer.from([10, 0, 0x41, 0x42])),
      error: InvalidUwsgiHeader,
      message: /name of 10 bytes runs past the vars block \(2 left\)/,
    },
    {
      name: "a value length running past the block",
      bytes: packet(Buffer.concat([Buffer.from([1, 0, 0x41]), Buffer.from([9, 0]), Buffer.from("abc")])),
      error: InvalidUwsgiHeader,
      message: /value of 9 bytes runs past the vars block \(3 left\)/,
    },
    {
      name: "a block ending inside a name length",
      bytes: packet(Buffer.concat([rawVar("A", "b"), Buffer.from([1])])),
      error: InvalidUwsgiHeader,
      message: /ends inside the length of a var name/,
    },
    {
      name: "a block ending inside a value length",
      bytes: packet(Buffer.from([1, 0, 0x41, 0])),
      error: InvalidUwsgiHeader,
      message: /ends inside the length of a var value/,
    },
    {
      name: "an empty var name",
      bytes: packet(rawVar("", "x")),
      error: InvalidUwsgiHeader,
      message: /empty name/,
    },
    {
      name: "a control byte in a var name",
      bytes: packet(rawVar("HTTP_X\r\nY", "x")),
      error: InvalidUwsgiHeader,
      message: /name has the byte 0x0d/,
    },
    {
      name: "a space in a var name",
      bytes: packet(rawVar("A B", "x")),
      error: InvalidUwsgiHeader,
      message: /name has the byte 0x20/,
    },
  ];

  for (const { name, bytes, limits, error, message } of cases) {
    it(`rejects ${name} with ${error.name}`, () => {
      let thrown: unknown;
      try {
        parseUwsgiPacket(bytes, limits);
      } catch (caught) {
        thrown = caught;
      }
      expect(thrown).toBeInstanceOf(error);
      expect(thrown).toBeInstanceOf(UwsgiError);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as UwsgiError).code).toMatch(/^TSGI_ERR_UWSGI_/);
    });
  }

  it("carries the offending values on the error", () => {
    const modifier = (() => {
      try {
        parseUwsgiPacket(packet(Buffer.alloc(0), 5, 7));
      } catch (error) {
        return error as UnsupportedModifier;
      }
    })();
    expect(modifier).toMatchObject({ modifier1: 5, modifier2: 7, status: 501 });
    const tooLarge = (() => {
      try {
        parseUwsgiPacket(Buffer.from([0, 0xff, 0xff, 0]), { maxVarsSize: 100 });
      } catch (error) {
        return error as UwsgiPacketTooLarge;
      }
    })();
    expect(tooLarge).toMatchObject({ size: 65535, limit: 100, status: 431 });
    const invalid = (() => {
      try {
        parseUwsgiPacket(packet(Buffer.from([1, 0, 0x41, 0])));
      } catch (error) {
        return error as InvalidUwsgiHeader;
      }
    })();
    expect(invalid).toMatchObject({ offset: 7, status: 400 });
  });

  it("cannot be asked to accept more than the u16 allows", () => {
    expect(() => parseUwsgiPacket(Buffer.from([0, 0xff, 0xff, 0]), { maxVarsSize: 1_000_000 })).not.toThrow();
    // The limit is clamped, not raised: the result is just "incomplete" for a 64 KiB block.
    expect(parseUwsgiPacket(Buffer.from([0, 0xff, 0xff, 0]), { maxVarsSize: 1_000_000 })).toEqual({ status: "incomplete", needed: 65539 });
  });

  it("encodeUwsgiPacket refuses what does not fit a u16", () => {
    expect(() => encodeUwsgiPacket([["A", Buffer.alloc(70_000)]])).toThrow(RangeError);
    expect(() => encodeUwsgiPacket([["A", Buffer.alloc(40_000)], ["B", Buffer.alloc(40_000)]])).toThrow(RangeError);
  });
});

/** mulberry32: a small seeded PRNG, so that a failing fuzz input can be reproduced. */
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

describe("parseUwsgiPacket: fuzz", () => {
  const SEED = 20240601;
  const INPUTS = 20_000;

  /** Random input of one of three kinds: noise, a mutated valid packet, or a valid packet with a wrong datasize. */
  function randomInput(random: () => number): Buffer {
    const int = (n: number) => Math.floor(random() * n);
    const kind = int(3);
    if (kind === 0) {
      const noise = Buffer.alloc(int(300));
      for (let i = 0; i < noise.length; i++) noise[i] = int(256);
      // Half of the noise gets a 0/0 header so that it reaches the vars parser.
      if (noise.length >= 4 && random() < 0.5) noise[0] = noise[3] = 0;
      return noise;
    }
    const vars: Array<[string, string]> = Array.from({ length: int(8) }, () => [
      `HTTP_${"X".repeat(1 + int(10))}`,
      "v".repeat(int(40)),
    ]);
    const bytes = encodeUwsgiPacket(vars);
    if (kind === 1) {
      for (let flips = 1 + int(4); flips > 0 && bytes.length > 0; flips--) bytes[int(bytes.length)] = int(256);
      return bytes.subarray(0, int(bytes.length + 1));
    }
    bytes.writeUInt16LE(int(bytes.length + 16), 1);
    return bytes;
  }

  it(`survives ${INPUTS} random inputs with only our errors, consuming no more than it was given`, () => {
    const random = prng(SEED);
    const started = Date.now();
    const seen = { complete: 0, incomplete: 0, rejected: 0 };
    for (let i = 0; i < INPUTS; i++) {
      const input = randomInput(random);
      try {
        const result = parseUwsgiPacket(input, { maxVarsSize: 1024, maxVars: 64 });
        seen[result.status] += 1;
        if (result.status === "complete") expect(result.consumed).toBeLessThanOrEqual(input.length);
        else expect(result.needed).toBeGreaterThan(input.length);
      } catch (error) {
        if (!(error instanceof UwsgiError)) throw new Error(`input #${i} (seed ${SEED}) threw a foreign error: ${String(error)}`);
        seen.rejected += 1;
      }
    }
    // Every kind of outcome was exercised, and quickly (a hang would blow the test timeout anyway).
    expect(seen.complete).toBeGreaterThan(100);
    expect(seen.incomplete).toBeGreaterThan(100);
    expect(seen.rejected).toBeGreaterThan(100);
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});
