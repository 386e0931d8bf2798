/**
 * Property fuzz of the uwsgi packet parser (src/gateway/uwsgi/parser.ts):
 * valid packets (built by an encoder of this file's own, not the module's)
 * round-trip at every split; arbitrary and mutated bytes get a result or one
 * of the parser's own UwsgiErrors, never anything else; the parser reads
 * nothing past the packet and keeps to the limits it was given.
 * Seed and size: test/fuzz/params.ts (FUZZ_SEED, FUZZ_RUNS, FUZZ_PATH).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeUwsgiPacket, parseUwsgiPacket, type UwsgiLimits, type UwsgiParseResult } from "../../src/gateway/uwsgi/parser.ts";
import { InvalidUwsgiHeader, TooManyUwsgiVars, UnsupportedModifier, UwsgiError, UwsgiPacketTooLarge } from "../../src/gateway/uwsgi/errors.ts";
import { fuzzParameters, yielding } from "./params.ts";

type Var = [name: string, value: Uint8Array];

/** The packet layout written out independently of encodeUwsgiPacket: header u8 | u16le | u8, then u16le-prefixed pairs. */
function encode(vars: readonly Var[], modifier1 = 0, modifier2 = 0): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of vars) {
    const nameBytes = Buffer.from(name, "latin1");
    parts.push(Buffer.from([nameBytes.length & 0xff, nameBytes.length >> 8]), nameBytes);
    parts.push(Buffer.from([value.length & 0xff, value.length >> 8]), Buffer.from(value));
  }
  const block = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([modifier1, block.length & 0xff, block.length >> 8, modifier2]), block]);
}

/** Var names the parser accepts: printable ASCII without space (0x21-0x7e). */
const varName = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 });
const varValue = fc.uint8Array({ maxLength: 200 });
const validVars = fc.array(fc.tuple(varName, varValue), { maxLength: 30 });

/** Every way the parser may legitimately refuse a packet. */
const OWN_ERRORS = [InvalidUwsgiHeader, UnsupportedModifier, UwsgiPacketTooLarge, TooManyUwsgiVars];

/** Parses, returning the error instead of throwing; anything but a UwsgiError fails the property at once. */
function attempt(bytes: Uint8Array, limits?: UwsgiLimits): UwsgiParseResult | UwsgiError {
  try {
    return parseUwsgiPacket(bytes, limits);
  } catch (error) {
    if (!(error instanceof UwsgiError)) throw new Error(`a foreign error escaped the parser: ${String(error)}`, { cause: error });
    expect(OWN_ERRORS.some((kind) => error instanceof kind)).toBe(true);
    expect(error.code).toMatch(/^TSGI_ERR_UWSGI_/);
    return error;
  }
}

/** A result in comparable form: vars as [name, hex]. */
function plain(result: UwsgiParseResult | UwsgiError): unknown {
  if (result instanceof UwsgiError) return { error: result.code, message: result.message };
  if (result.status === "incomplete") return result;
  return { consumed: result.consumed, vars: result.vars.map(([name, value]) => [name, value.toString("hex")]) };
}

/** Bytes that look like packets often enough to get past the header: mutated valid packets and raw noise with a 0/0 header. */
const mutatedPacket = fc.oneof(
  fc.tuple(validVars, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat()).map(([vars, flips, cut]) => {
    const bytes = encode(vars);
    for (const [at, byte] of flips) bytes[at % bytes.length] = byte;
    return bytes.subarray(0, cut % (bytes.length + 1));
  }),
  fc.uint8Array({ maxLength: 400 }).map((noise) => {
    if (noise.length >= 4) noise[0] = noise[3] = 0;
    return noise;
  }),
  fc.tuple(validVars, fc.integer({ min: 0, max: 0xffff })).map(([vars, datasize]) => {
    // A header whose datasize lies: longer or shorter than the block that follows.
    const bytes = encode(vars);
    bytes.writeUInt16LE(datasize, 1);
    return bytes;
  }),
  fc.uint8Array({ maxLength: 64 }),
);

const limits = fc.record({ maxVarsSize: fc.integer({ min: 0, max: 0x1_0000 + 10 }), maxVars: fc.integer({ min: 0, max: 40 }) }, { requiredKeys: [] });

describe("uwsgi parser fuzz", () => {
  it("round-trips valid packets, whole and fed as growing prefixes", () => {
    return fc.assert(
      yielding(validVars, fc.array(fc.nat(), { maxLength: 8 }), (vars, cuts) => {
        const bytes = encode(vars);
        // Our encoder and the module's agree byte for byte.
        expect(encodeUwsgiPacket(vars).equals(bytes)).toBe(true);
        const result = attempt(bytes);
        expect(plain(result)).toEqual({ consumed: bytes.length, vars: vars.map(([name, value]) => [name, Buffer.from(value).toString("hex")]) });
        // Any prefix is "incomplete", asking for more than it has and no more than the packet.
        for (const cut of cuts) {
          const prefix = bytes.subarray(0, cut % bytes.length);
          const partial = attempt(prefix);
          expect(partial).toMatchObject({ status: "incomplete" });
          const needed = (partial as { needed: number }).needed;
          expect(needed).toBeGreaterThan(prefix.length);
          expect(needed).toBeLessThanOrEqual(bytes.length);
        }
      }),
      fuzzParameters(300),
    );
  });

  it("reads nothing past the packet: trailing bytes (the body) never change the result", () => {
    return fc.assert(
      yielding(mutatedPacket, fc.uint8Array({ minLength: 1, maxLength: 64 }), (packet, trailer) => {
        const alone = attempt(Buffer.from(packet));
        // The packet as a view into a larger buffer that holds the trailer: an over-read would see it.
        const backing = Buffer.concat([packet, trailer]);
        const view = new Uint8Array(backing.buffer, backing.byteOffset, packet.length);
        expect(plain(attempt(view))).toEqual(plain(alone));
        const joined = attempt(backing);
        if (!(alone instanceof UwsgiError) && alone.status === "complete") {
          expect(plain(joined)).toEqual(plain(alone));
        }
      }),
      fuzzParameters(1000),
    );
  });

  it("meets arbitrary bytes with a result or its own typed error, within the limits it was given", () => {
    return fc.assert(
      yielding(mutatedPacket, limits, (bytes, given) => {
        const result = attempt(bytes, given);
        if (result instanceof UwsgiError) return;
        const maxVarsSize = Math.min(given.maxVarsSize ?? 0xffff, 0xffff);
        if (result.status === "incomplete") {
          expect(result.needed).toBeGreaterThan(bytes.length);
          // Never asks to buffer more than the header plus the largest block allowed.
          expect(result.needed).toBeLessThanOrEqual(4 + maxVarsSize);
          return;
        }
        expect(result.consumed).toBeLessThanOrEqual(bytes.length);
        expect(result.consumed - 4).toBeLessThanOrEqual(maxVarsSize);
        expect(result.vars.length).toBeLessThanOrEqual(given.maxVars ?? 1000);
        for (const [name, value] of result.vars) {
          expect(name).toMatch(/^[\x21-\x7e]+$/);
          // Values are views into the packet's vars block, never past the bytes it consumed.
          expect(value.buffer).toBe(bytes.buffer);
          expect(value.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset + 4);
          expect(value.byteOffset + value.length).toBeLessThanOrEqual(bytes.byteOffset + result.consumed);
        }
        // Re-encoding the vars gives back exactly the bytes consumed.
        expect(encode(result.vars.map(([n, v]) => [n, v])).equals(Buffer.from(bytes).subarray(0, result.consumed))).toBe(true);
      }),
      fuzzParameters(2000),
    );
  });

  it("refuses an oversized or foreign packet from its 4-byte header alone", () => {
    return fc.assert(
      yielding(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 0xffff }),
        (modifier1, datasize, modifier2, maxVarsSize) => {
          const header = Buffer.from([modifier1, datasize & 0xff, datasize >> 8, modifier2]);
          const result = attempt(header, { maxVarsSize });
          if (modifier1 !== 0 || modifier2 !== 0) expect(result).toBeInstanceOf(UnsupportedModifier);
          else if (datasize > maxVarsSize) expect(result).toBeInstanceOf(UwsgiPacketTooLarge);
          else if (datasize === 0) expect(plain(result)).toEqual({ consumed: 4, vars: [] });
          else expect(result).toEqual({ status: "incomplete", needed: 4 + datasize });
        },
      ),
      fuzzParameters(1000),
    );
  });
});
