/**
 * @module test/fuzz/http-mutations
 *
 * Request generators for the differential fuzzer, in the manner of
 * http-garden: valid HTTP/1.1 requests (GET, POST with Content-Length, POST
 * chunked; several pipelined on one connection), then mutated where front
 * ends and back ends have disagreed before — duplicated and obfuscated
 * Content-Length and Transfer-Encoding, whitespace around names and values,
 * obs-fold, bare LF and bare CR line ends, chunk-size tricks, versions and
 * request lines — plus a few raw byte edits. Each request's target names the
 * input and its place in the pipeline (/f/<n>), so that what a backend saw
 * can be told apart.
 */
import fc from "fast-check";

/** A header as it will be written: the whole line is name + separator + value, then the line end. */
export interface HeaderLine {
  name: string;
  sep: string;
  value: string;
}

export interface RequestSpec {
  method: string;
  target: string;
  version: string;
  headers: HeaderLine[];
  /** The body exactly as written after the head (already chunk-encoded when chunked). */
  body: string;
  /** The line end of the head's lines (CRLF unless mutated). */
  eol: string;
}

export interface FuzzInput {
  requests: RequestSpec[];
  /** Raw byte edits applied after serializing (rare). */
  edits: Array<[at: number, op: "set" | "insert" | "delete", byte: number]>;
  /** Labels of the mutations applied, for the report. */
  labels: string[];
}

const hexOf = (n: number) => n.toString(16);

function chunk(data: string): string {
  return `${hexOf(data.length)}\r\n${data}\r\n`;
}

const bodyText = fc.string({ unit: fc.constantFrom(..."abcdefxyz0123456789 -=\r\n".split("")), minLength: 0, maxLength: 24 });

/** A valid request: GET, POST with Content-Length, or POST chunked (1-3 chunks). */
function baseRequest(index: number): fc.Arbitrary<RequestSpec> {
  const target = `/f/${index}`;
  const host: HeaderLine = { name: "Host", sep: ": ", value: "fuzz.test" };
  return fc.oneof(
    fc.constant<RequestSpec>({ method: "GET", target, version: "HTTP/1.1", headers: [host], body: "", eol: "\r\n" }),
    bodyText.map<RequestSpec>((body) => ({
      method: "POST",
      target,
      version: "HTTP/1.1",
      headers: [host, { name: "Content-Length", sep: ": ", value: String(body.length) }],
      body,
      eol: "\r\n",
    })),
    fc.array(bodyText.filter((s) => s.length > 0), { minLength: 1, maxLength: 3 }).map<RequestSpec>((chunks) => ({
      method: "POST",
      target,
      version: "HTTP/1.1",
      headers: [host, { name: "Transfer-Encoding", sep: ": ", value: "chunked" }],
      body: `${chunks.map(chunk).join("")}0\r\n\r\n`,
      eol: "\r\n",
    })),
  );
}

type Mutator = (request: RequestSpec, pick: number) => string;

const pickFrom = <T>(list: readonly T[], n: number): T => list[n % list.length]!;

const CL_VALUES = (n: number) => [`0${n}`, `+${n}`, ` ${n}`, `${n} `, `${n},${n}`, `${n}, ${n + 1}`, `0x${hexOf(n)}`, "", "-1", `${n}.0`, `${n}\t`, "18446744073709551617", `${n + 1}`, `${Math.max(0, n - 1)}`, `${n}a`];
const TE_VALUES = ["Chunked", "CHUNKED", " chunked", "chunked ", "\tchunked", "chunked, chunked", "gzip, chunked", "chunked, gzip", "identity, chunked", "xchunked", "chunk", "chunked\x0b", "chunked;q=1", '"chunked"', "identity", ""];
const NAME_TRICKS = (name: string) => [`${name} `, ` ${name}`, `${name}\t`, name.toLowerCase(), name.toUpperCase(), name.replace("-", "_"), `${name}\x00`, `X-${name}`, name.replace("-", " ")];
const EOLS = ["\n", "\r", "\r\r\n", "\n\r", "\r\n "];

/** The mutations, each a pure edit of one request; the label names what was done. */
const MUTATORS: Record<string, Mutator> = {
  "duplicate CL": (r, n) => {
    const length = r.headers.find((h) => /content-length/i.test(h.name))?.value ?? String(r.body.length);
    r.headers.push({ name: "Content-Length", sep: ": ", value: pickFrom([length, String(Number(length) + 1), "0", String(r.body.length)], n) });
    return "duplicate CL";
  },
  "odd CL value": (r, n) => {
    const h = r.headers.find((x) => /content-length/i.test(x.name));
    const v = pickFrom(CL_VALUES(r.body.length), n);
    if (h) h.value = v;
    else r.headers.push({ name: "Content-Length", sep: ": ", value: v });
    return `CL ${JSON.stringify(v)}`;
  },
  "CL with TE": (r, n) => {
    if (r.headers.some((h) => /transfer-encoding/i.test(h.name))) r.headers.push({ name: "Content-Length", sep: ": ", value: pickFrom(["0", "3", String(r.body.length), "5"], n) });
    else r.headers.push({ name: "Transfer-Encoding", sep: ": ", value: "chunked" });
    return "CL and TE";
  },
  "odd TE value": (r, n) => {
    const v = pickFrom(TE_VALUES, n);
    const h = r.headers.find((x) => /transfer-encoding/i.test(x.name));
    if (h) h.value = v;
    else r.headers.push({ name: "Transfer-Encoding", sep: ": ", value: v });
    return `TE ${JSON.stringify(v)}`;
  },
  "duplicate TE": (r, n) => {
    r.headers.push({ name: "Transfer-Encoding", sep: ": ", value: pickFrom(["chunked", "identity", "gzip", ""], n) });
    return "duplicate TE";
  },
  "obfuscated name": (r, n) => {
    const h = r.headers.find((x) => /content-length|transfer-encoding/i.test(x.name)) ?? r.headers[0]!;
    h.name = pickFrom(NAME_TRICKS(h.name), n);
    return `name ${JSON.stringify(h.name)}`;
  },
  "separator whitespace": (r, n) => {
    const h = pickFrom(r.headers, n);
    h.sep = pickFrom([":", " : ", ":\t", ":  ", "\t:", ":\x0b", ":\r\n "], n >> 3);
    return `sep ${JSON.stringify(h.sep)} on ${h.name}`;
  },
  "obs-fold": (r, n) => {
    const h = pickFrom(r.headers, n);
    const cut = Math.max(0, h.value.length - 2);
    h.value = `${h.value.slice(0, cut)}\r\n ${h.value.slice(cut)}`;
    return `obs-fold in ${h.name}`;
  },
  "line end": (r, n) => {
    r.eol = pickFrom(EOLS, n);
    return `eol ${JSON.stringify(r.eol)}`;
  },
  "version": (r, n) => {
    r.version = pickFrom(["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/01.1", "HTTP/1.10", "HTTP/1", "HTTP/1.1\x00"], n);
    return `version ${JSON.stringify(r.version)}`;
  },
  "method": (r, n) => {
    r.method = pickFrom(["get", "GE T", "POST ", " POST", "PO\tST", "GET\x00", "XPOST", "G%45T"], n);
    return `method ${JSON.stringify(r.method)}`;
  },
  "target": (r, n) => {
    r.target = pickFrom([`${r.target} x`, `${r.target}\t`, `${r.target}#frag`, `${r.target}%`, `http://fuzz.test${r.target}`, `${r.target}/../x`, `${r.target}\x7f`, `${r.target}?a b`], n);
    return `target ${JSON.stringify(r.target)}`;
  },
  "chunk size": (r, n) => {
    if (!/^[0-9a-f]+\r\n/i.test(r.body)) return "chunk size (not chunked)";
    const [size] = r.body.split("\r\n", 1) as [string];
    const v = pickFrom([`0${size}`, size.toUpperCase(), `${size} `, ` ${size}`, `${size};x=y`, `${size};`, `0x${size}`, `-${size}`, `${size}\t`, `1${"0".repeat(16)}${size}`, `${size}\x00`, `${size}\n`], n);
    r.body = v + r.body.slice(size.length);
    return `chunk size ${JSON.stringify(v)}`;
  },
  "chunk end": (r, n) => {
    if (!r.body.endsWith("0\r\n\r\n")) return "chunk end (not chunked)";
    const v = pickFrom(["0\r\n", "0\n\n", "0\r\nX: y\r\n\r\n", "0\r\nContent-Length: 5\r\n\r\n", "00\r\n\r\n", "0;x\r\n\r\n", "0\r\n\r", "0\r\n\n"], n);
    r.body = r.body.slice(0, -5) + v;
    return `last chunk ${JSON.stringify(v)}`;
  },
  "chunk data": (r, n) => {
    if (!/^[0-9a-f]+\r\n/i.test(r.body)) return "chunk data (not chunked)";
    // The first chunk's data one byte longer or shorter than its size, or its CRLF bare.
    const at = r.body.indexOf("\r\n") + 2;
    const size = parseInt(r.body, 16);
    const end = at + size;
    r.body = pickFrom([`${r.body.slice(0, end)}x${r.body.slice(end)}`, `${r.body.slice(0, end - 1)}${r.body.slice(end)}`, `${r.body.slice(0, end)}\n${r.body.slice(end + 2)}`, `${r.body.slice(0, end)}${r.body.slice(end + 2)}`], n);
    return "chunk data length";
  },
  "body length": (r, n) => {
    r.body = pickFrom([`${r.body}x`, r.body.slice(0, -1), `${r.body}\r\n`, `${r.body}GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`], n);
    return "body length";
  },
  "expect": (r) => {
    r.headers.push({ name: "Expect", sep: ": ", value: "100-continue" });
    return "Expect";
  },
  "header junk": (r, n) => {
    r.headers.splice(n % (r.headers.length + 1), 0, pickFrom<HeaderLine>([{ name: "X-A", sep: "", value: "" }, { name: "", sep: ": ", value: "v" }, { name: "X A", sep: ": ", value: "1" }, { name: "X-A", sep: ": ", value: "a\x00b" }, { name: "X-A", sep: ": ", value: "a\rb" }, { name: "Host", sep: ": ", value: "other.test" }, { name: "Connection", sep: ": ", value: "close" }, { name: "Connection", sep: ": ", value: "Transfer-Encoding" }], n >> 2));
    return "header junk";
  },
};
const MUTATOR_NAMES = Object.keys(MUTATORS);

export function serializeRequest(r: RequestSpec): string {
  return `${r.method} ${r.target} ${r.version}${r.eol}${r.headers.map((h) => `${h.name}${h.sep}${h.value}${r.eol}`).join("")}${r.eol}${r.body}`;
}

export function serialize(input: FuzzInput): Buffer {
  let bytes = Buffer.from(input.requests.map(serializeRequest).join(""), "latin1");
  for (const [at, op, byte] of input.edits) {
    const i = bytes.length ? at % bytes.length : 0;
    if (op === "set" && bytes.length) bytes[i] = byte;
    else if (op === "insert") bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([byte]), bytes.subarray(i)]);
    else if (op === "delete") bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
  }
  return bytes;
}

/**
 * 1-3 pipelined requests, each mutated 0-2 times (most inputs at least
 * once), the last one asking to close the connection so that both fronts
 * end it once they are done; a few raw byte edits on top, rarely.
 */
export const fuzzInput: fc.Arbitrary<FuzzInput> = fc
  .integer({ min: 1, max: 3 })
  .chain((count) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: count }, (_, i) => baseRequest(i))),
      fc.array(fc.tuple(fc.nat(count - 1), fc.constantFrom(...MUTATOR_NAMES), fc.nat()), { minLength: 0, maxLength: 3 }),
      fc.oneof({ arbitrary: fc.constant([]), weight: 9 }, { arbitrary: fc.array(fc.tuple(fc.nat(), fc.constantFrom("set" as const, "insert" as const, "delete" as const), fc.constantFrom(0x0d, 0x0a, 0x20, 0x09, 0x00, 0x3a, 0x30, 0x7f)), { minLength: 1, maxLength: 2 }), weight: 1 }),
    ),
  )
  .map(([requests, mutations, edits]) => {
    const copy: RequestSpec[] = requests.map((r) => ({ ...r, headers: r.headers.map((h) => ({ ...h })) }));
    copy[copy.length - 1]!.headers.push({ name: "Connection", sep: ": ", value: "close" });
    const labels = mutations.map(([which, name, pick]) => `#${which} ${MUTATORS[name]!(copy[which]!, pick)}`);
    if (edits.length) labels.push(`bytes ${JSON.stringify(edits)}`);
    return { requests: copy, edits: edits.map(([at, op, byte]): [number, "set" | "insert" | "delete", number] => [at, op, byte]), labels };
  });

/**
 * The input with its number in every target (/f/<k> becomes /f/<n>/<k>), so
 * that a report the worker makes late, after the next input has started,
 * is recognised as belonging to an earlier one.
 */
export function numbered(input: FuzzInput, n: number): FuzzInput {
  return { ...input, requests: input.requests.map((r, k) => ({ ...r, target: r.target.replace(`/f/${k}`, `/f/${n}/${k}`) })) };
}
