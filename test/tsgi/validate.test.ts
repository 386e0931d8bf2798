/**
 * @module test/tsgi/validate
 *
 * The validator against docs/tsgi.md, as a table: for each rule, an input that
 * keeps it and one that breaks it. A broken rule must give a TsgiValidationError
 * (or a TsgiWarning, for the soft ones) that names the rule, blames the right
 * side and shows the bad value; a kept one must give neither. Apps run in
 * memory through the real handler (runApp) into a collecting sink; the server's
 * side is broken with small fake servers. The last sections check that a valid
 * app's response is byte for byte what it is without the validator, and that
 * nothing passing through is changed.
 */
import vm from "node:vm";
import v8 from "node:v8";
import { describe, expect, it } from "vitest";
import { baseEnviron, requestEnviron } from "../../src/tsgi/environ.ts";
import { type ResponseSink, runApp, TsgiContractError } from "../../src/tsgi/handler.ts";
import type { Chunk, Environ, HeaderList, InputStream, ResponseBody, StartResponse, TsgiApp } from "../../src/tsgi/types.ts";
import {
  type Party,
  RULE_NAMES,
  type RuleName,
  TsgiValidationError,
  TsgiWarning,
  UNCHECKED_RULES,
  validator,
} from "../../src/tsgi/validate.ts";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/** A ResponseSink that keeps everything, for comparing responses byte for byte. */
class CollectingSink implements ResponseSink {
  head: { code: number; status: string; headers: HeaderList } | undefined;
  readonly chunks: Uint8Array[] = [];
  ended = false;
  aborted = false;
  readonly clientGone = false;

  sendHead(code: number, status: string, headers: HeaderList): void {
    this.head = { code, status, headers: headers.map(([name, value]) => [name, value]) };
  }
  write(bytes: Uint8Array): boolean {
    this.chunks.push(Uint8Array.from(bytes));
    return true;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  end(): void {
    this.ended = true;
  }
  abort(): void {
    this.aborted = true;
  }
  onClientGone(): void {}

  get bytes(): Uint8Array {
    return Uint8Array.from(this.chunks.flatMap((chunk) => [...chunk]));
  }
  get text(): string {
    return new TextDecoder().decode(this.bytes);
  }
}

interface RequestSpec {
  method?: string;
  target?: string;
  /** Header names and values alternating, as node's rawHeaders. */
  headers?: string[];
  /** What tsgi.input yields (anything, to break the rule on purpose). */
  body?: unknown[];
  scriptName?: string;
}

/** An environ built the way our servers build it, with a log to read back. */
function makeEnviron(spec: RequestSpec = {}, log: string[] = []): Environ {
  const base = baseEnviron({ serverName: "test.local", serverPort: 8080, errors: { write: (message) => void log.push(message) } });
  const chunks = spec.body ?? [];
  const input = (async function* () {
    yield* chunks;
  })() as InputStream;
  return requestEnviron(
    base,
    {
      method: spec.method ?? "GET",
      target: spec.target ?? "/",
      protocol: "HTTP/1.1",
      rawHeaders: spec.headers ?? [],
      remoteAddr: "127.0.0.1",
      remotePort: 50000,
      scriptName: spec.scriptName,
    },
    input,
  );
}

/** What one run produced: the error (if any) and the warnings. */
interface Run {
  error?: unknown;
  warnings: TsgiWarning[];
  sink?: CollectingSink;
}

/** Runs `app` behind the validator through the real handler. */
async function drive(app: TsgiApp, environ: Environ = makeEnviron()): Promise<Run> {
  const warnings: TsgiWarning[] = [];
  const sink = new CollectingSink();
  const outcome = await runApp(validator(app, { onWarning: (warning) => warnings.push(warning) }), environ, sink);
  return { error: outcome.error, warnings, sink };
}

/** Runs `scenario` with a validator built by it, catching what it throws (fake servers). */
async function capture(scenario: (validate: (app: TsgiApp) => TsgiApp) => unknown): Promise<Run> {
  const warnings: TsgiWarning[] = [];
  try {
    await scenario((app) => validator(app, { onWarning: (warning) => warnings.push(warning) }));
    return { warnings };
  } catch (error) {
    return { error, warnings };
  }
}

/** Iterates any body the way a server does, then closes it. */
async function consume(body: ResponseBody | Promise<ResponseBody>): Promise<void> {
  const resolved = await body;
  try {
    for await (const _chunk of resolved as AsyncIterable<Chunk>) {
      // discard
    }
  } finally {
    await resolved.close?.();
  }
}

const TEXT: HeaderList = [["Content-Type", "text/plain; charset=utf-8"]];
const noWrite = async (): Promise<void> => {};
/** A startResponse of a server that accepts everything. */
const lenientStartResponse: StartResponse = () => noWrite;

/** The plainest valid app. */
const ok: TsgiApp = (_environ, startResponse) => {
  startResponse("200 OK", TEXT);
  return ["ok\n"];
};

/** An app that answers `status` with `headers` and `body`. */
function respond(status: string, headers: HeaderList = TEXT, body: unknown[] = ["ok\n"]): TsgiApp {
  return (_environ, startResponse) => {
    startResponse(status, headers);
    return body as Chunk[];
  };
}

/** An app whose body is a generator yielding `chunks` after startResponse. */
function stream(status: string, headers: HeaderList, chunks: unknown[]): TsgiApp {
  return (_environ, startResponse) => {
    startResponse(status, headers);
    return (function* () {
      yield* chunks as Chunk[];
    })();
  };
}

/** An app that reads the whole request body and answers with its size. */
const readBody: TsgiApp = async (environ, startResponse) => {
  let size = 0;
  for await (const chunk of environ["tsgi.input"]) size += chunk.byteLength;
  startResponse("200 OK", TEXT);
  return [`${size}\n`];
};

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Runs `ok` against the environ the server built, changed by `change`. */
function withEnviron(change: (environ: Record<string, unknown>) => void, spec?: RequestSpec): () => Promise<Run> {
  return () => {
    const environ = { ...makeEnviron(spec) } as Record<string, unknown>;
    change(environ);
    return drive(ok, environ as Environ);
  };
}

const asIs = (): void => {};

// ---------------------------------------------------------------------------
// Hard rules: one input that keeps the rule, one that breaks it
// ---------------------------------------------------------------------------

interface HardCase {
  rule: RuleName;
  party: Party;
  title: string;
  /** Text the error message must contain: the bad value as shown. */
  value: string;
  good: () => Promise<Run>;
  bad: () => Promise<Run>;
}

const hardCases: HardCase[] = [
  // -- the application
  {
    rule: "the application",
    party: "application",
    title: "validator() is given a function",
    value: "an object",
    good: () => capture(() => validator(ok)),
    bad: () => capture(() => validator({ app: ok } as unknown as TsgiApp)),
  },
  {
    rule: "the application",
    party: "server",
    title: "the server calls the app with (environ, startResponse)",
    value: "3 arguments",
    good: () => capture((validate) => consume(validate(ok)(makeEnviron(), lenientStartResponse))),
    bad: () => capture((validate) => (validate(ok) as (...args: unknown[]) => unknown)(makeEnviron(), lenientStartResponse, {})),
  },
  {
    rule: "the application",
    party: "server",
    title: "startResponse is a function",
    value: "null",
    good: () => capture((validate) => consume(validate(ok)(makeEnviron(), lenientStartResponse))),
    bad: () => capture((validate) => validate(ok)(makeEnviron(), null as unknown as StartResponse)),
  },

  // -- environ
  {
    rule: "environ",
    party: "server",
    title: "environ is a plain object",
    value: "a Request",
    good: withEnviron(asIs),
    bad: () => {
      class Request {}
      const environ = Object.assign(new Request(), makeEnviron());
      return drive(ok, environ as Environ);
    },
  },
  {
    rule: "environ",
    party: "server",
    title: "every required key is present",
    value: '"QUERY_STRING"',
    good: withEnviron(asIs),
    bad: withEnviron((environ) => delete environ.QUERY_STRING),
  },
  {
    rule: "environ",
    party: "server",
    title: "CGI keys hold strings",
    value: "8080",
    good: withEnviron(asIs),
    bad: withEnviron((environ) => (environ.SERVER_PORT = 8080)),
  },
  {
    rule: "environ",
    party: "server",
    title: "an absent key is absent, not undefined",
    value: '"CONTENT_TYPE"',
    good: withEnviron(asIs, { method: "POST", headers: ["Content-Type", "text/plain", "Content-Length", "0"] }),
    bad: withEnviron((environ) => (environ.CONTENT_TYPE = undefined)),
  },

  // -- REQUEST_METHOD
  {
    rule: "REQUEST_METHOD",
    party: "server",
    title: "the method is a token",
    value: '"GET /"',
    good: withEnviron(asIs, { method: "PROPFIND" }),
    bad: withEnviron((environ) => (environ.REQUEST_METHOD = "GET /")),
  },

  // -- SCRIPT_NAME and PATH_INFO
  {
    rule: "SCRIPT_NAME and PATH_INFO",
    party: "server",
    title: 'SCRIPT_NAME does not end with "/"',
    value: '"/"',
    good: withEnviron(asIs, { target: "/hello/x", scriptName: "/hello" }),
    bad: withEnviron((environ) => (environ.SCRIPT_NAME = "/")),
  },
  {
    rule: "SCRIPT_NAME and PATH_INFO",
    party: "server",
    title: 'PATH_INFO starts with "/" ("*" only for OPTIONS *)',
    value: '"x"',
    good: withEnviron(asIs, { method: "OPTIONS", target: "*" }),
    bad: withEnviron((environ) => (environ.PATH_INFO = "x")),
  },
  {
    rule: "SCRIPT_NAME and PATH_INFO",
    party: "server",
    title: "they are not both empty",
    value: 'both ""',
    good: withEnviron(asIs, { target: "/hello", scriptName: "/hello" }),
    bad: withEnviron((environ) => (environ.PATH_INFO = "")),
  },
  {
    rule: "SCRIPT_NAME and PATH_INFO",
    party: "server",
    title: "PATH_INFO is percent-decoded",
    value: '"/caf%C3%A9"',
    good: withEnviron(asIs, { target: "/caf%C3%A9" }),
    bad: withEnviron((environ) => (environ.PATH_INFO = "/caf%C3%A9"), { target: "/caf%C3%A9" }),
  },

  // -- QUERY_STRING
  {
    rule: "QUERY_STRING",
    party: "server",
    title: "no fragment",
    value: '"a=1#top"',
    good: withEnviron(asIs, { target: "/?a=1#top" }),
    bad: withEnviron((environ) => (environ.QUERY_STRING = "a=1#top")),
  },

  // -- CONTENT_TYPE and CONTENT_LENGTH
  {
    rule: "CONTENT_TYPE and CONTENT_LENGTH",
    party: "server",
    title: "CONTENT_LENGTH is digits",
    value: '"12abc"',
    good: withEnviron(asIs, { method: "POST", headers: ["Content-Length", "0"] }),
    bad: withEnviron((environ) => (environ.CONTENT_LENGTH = "12abc")),
  },
  {
    rule: "CONTENT_TYPE and CONTENT_LENGTH",
    party: "server",
    title: "no HTTP_CONTENT_TYPE",
    value: '"text/html"',
    good: withEnviron(asIs, { method: "POST", headers: ["Content-Type", "text/html", "Content-Length", "0"] }),
    bad: withEnviron((environ) => (environ.HTTP_CONTENT_TYPE = "text/html")),
  },

  // -- HTTP_* keys
  {
    rule: "HTTP_* keys",
    party: "server",
    title: "header keys are upper case with _ for -",
    value: '"HTTP_x-trace"',
    good: withEnviron(asIs, { headers: ["x-trace", "1", "Accept", "a", "accept", "b"] }),
    bad: withEnviron((environ) => (environ["HTTP_x-trace"] = "1")),
  },
  {
    rule: "HTTP_* keys",
    party: "server",
    title: "header values have no CR, LF or NUL",
    value: '"a\\r\\nX-Evil: 1"',
    good: withEnviron(asIs, { headers: ["X-Name", "caf\u00c3\u00a9"] }),
    bad: withEnviron((environ) => (environ.HTTP_X_NAME = "a\r\nX-Evil: 1")),
  },
  {
    rule: "HTTP_* keys",
    party: "server",
    title: "header values are Latin-1, one character per byte",
    value: '"caf\u00e9 \u263a"',
    good: withEnviron(asIs, { headers: ["X-Name", "caf\u00e9"] }),
    bad: withEnviron((environ) => (environ.HTTP_X_NAME = "caf\u00e9 \u263a")),
  },

  // -- server and client keys
  {
    rule: "server and client keys",
    party: "server",
    title: "SERVER_PORT is digits",
    value: '"http"',
    good: withEnviron(asIs),
    bad: withEnviron((environ) => (environ.SERVER_PORT = "http")),
  },
  {
    rule: "server and client keys",
    party: "server",
    title: "SERVER_PROTOCOL looks like HTTP/1.1",
    value: '"http/1.1"',
    good: withEnviron((environ) => (environ.SERVER_PROTOCOL = "HTTP/2.0")),
    bad: withEnviron((environ) => (environ.SERVER_PROTOCOL = "http/1.1")),
  },
  {
    rule: "server and client keys",
    party: "server",
    title: "REMOTE_PORT is digits",
    value: '"-1"',
    good: withEnviron(asIs),
    bad: withEnviron((environ) => (environ.REMOTE_PORT = "-1")),
  },

  // -- tsgi.version, tsgi.url_scheme, process flags
  {
    rule: "tsgi.version",
    party: "server",
    title: "tsgi.version is [1, minor]",
    value: "[2, 0]",
    good: withEnviron((environ) => (environ["tsgi.version"] = [1, 1])),
    bad: withEnviron((environ) => (environ["tsgi.version"] = [2, 0])),
  },
  {
    rule: "tsgi.url_scheme",
    party: "server",
    title: 'tsgi.url_scheme is "http" or "https"',
    value: '"HTTPS"',
    good: withEnviron((environ) => (environ["tsgi.url_scheme"] = "https")),
    bad: withEnviron((environ) => (environ["tsgi.url_scheme"] = "HTTPS")),
  },
  {
    rule: "process flags",
    party: "server",
    title: "the flags are booleans",
    value: '"no"',
    good: withEnviron((environ) => (environ["tsgi.multiprocess"] = true)),
    bad: withEnviron((environ) => (environ["tsgi.multithread"] = "no")),
  },

  // -- tsgi.input
  {
    rule: "tsgi.input",
    party: "server",
    title: "tsgi.input is an async iterable",
    value: '"raw body"',
    good: withEnviron(asIs),
    bad: withEnviron((environ) => (environ["tsgi.input"] = "raw body")),
  },
  {
    rule: "tsgi.input",
    party: "server",
    title: "tsgi.input yields Uint8Array",
    value: '"abc"',
    good: () => drive(readBody, makeEnviron({ method: "POST", headers: ["Content-Length", "3"], body: [new TextEncoder().encode("abc")] })),
    bad: () => drive(readBody, makeEnviron({ method: "POST", headers: ["Content-Length", "3"], body: ["abc"] })),
  },
  {
    rule: "tsgi.input",
    party: "server",
    title: "tsgi.input never yields more than CONTENT_LENGTH",
    value: "more than CONTENT_LENGTH 2",
    good: () => drive(readBody, makeEnviron({ method: "POST", headers: ["Content-Length", "2"], body: [bytes("ab")] })),
    bad: () => drive(readBody, makeEnviron({ method: "POST", headers: ["Content-Length", "2"], body: [bytes("abc")] })),
  },
  {
    rule: "tsgi.input",
    party: "server",
    title: "tsgi.input does not end short of CONTENT_LENGTH",
    value: "ended after 2 bytes",
    good: () => drive(readBody, makeEnviron({ method: "POST", headers: ["Content-Length", "4"], body: [bytes("ab"), bytes("cd")] })),
    bad: () => drive(readBody, makeEnviron({ method: "POST", headers: ["Content-Length", "4"], body: [bytes("ab")] })),
  },
  {
    rule: "tsgi.input",
    party: "application",
    title: "tsgi.input is iterated once",
    value: "second iteration",
    good: () => drive(readBody, makeEnviron({ method: "POST", headers: ["Content-Length", "2"], body: [bytes("ab")] })),
    bad: () =>
      drive(async (environ, startResponse) => {
        await readBody(environ, () => noWrite);
        return readBody(environ, startResponse);
      }, makeEnviron({ method: "POST", headers: ["Content-Length", "2"], body: [bytes("ab")] })),
  },

  // -- tsgi.errors
  {
    rule: "tsgi.errors",
    party: "server",
    title: "tsgi.errors has write()",
    value: "an object",
    good: withEnviron(asIs),
    bad: withEnviron((environ) => (environ["tsgi.errors"] = { log: () => {} })),
  },
  {
    rule: "tsgi.errors",
    party: "application",
    title: "the app writes strings to tsgi.errors",
    value: "a RangeError",
    good: () =>
      drive((environ, startResponse) => {
        environ["tsgi.errors"].write("a note\n");
        return ok(environ, startResponse);
      }),
    bad: () =>
      drive((environ, startResponse) => {
        environ["tsgi.errors"].write(new RangeError("oops") as unknown as string);
        return ok(environ, startResponse);
      }),
  },

  // -- startResponse
  {
    rule: "startResponse",
    party: "application",
    title: "a second call needs excInfo",
    value: '"500 Internal Server Error"',
    good: () =>
      drive((_environ, startResponse) => {
        startResponse("200 OK", TEXT);
        startResponse("500 Internal Server Error", TEXT, new Error("late failure"));
        return ["failed\n"];
      }),
    bad: () =>
      drive((_environ, startResponse) => {
        startResponse("200 OK", TEXT);
        startResponse("500 Internal Server Error", TEXT);
        return ["failed\n"];
      }),
  },
  {
    rule: "startResponse",
    party: "application",
    title: "the body produces no chunk before startResponse",
    value: '"early"',
    good: () =>
      drive((_environ, startResponse) =>
        (function* () {
          startResponse("200 OK", TEXT); // lazy, but before the first chunk
          yield "early";
        })(),
      ),
    bad: () =>
      drive((_environ, startResponse) =>
        (function* () {
          yield "early";
          startResponse("200 OK", TEXT);
        })(),
      ),
  },
  {
    rule: "startResponse",
    party: "application",
    title: "an array is returned only after startResponse",
    value: '["ok\\n"]',
    good: () => drive(ok),
    bad: () => drive(() => ["ok\n"]),
  },
  {
    rule: "startResponse",
    party: "application",
    title: "an empty body still needs startResponse",
    value: "ended without startResponse",
    good: () =>
      drive((_environ, startResponse) =>
        (function* () {
          startResponse("204 No Content", []);
        })(),
      ),
    bad: () => drive(() => (function* () {})()),
  },
  {
    rule: "startResponse",
    party: "server",
    title: "startResponse returns the write callable",
    value: "undefined",
    good: () => capture((validate) => consume(validate(ok)(makeEnviron(), lenientStartResponse))),
    bad: () => capture((validate) => consume(validate(ok)(makeEnviron(), (() => undefined) as unknown as StartResponse))),
  },

  // -- status
  {
    rule: "status",
    party: "application",
    title: "three digits, a space, a reason",
    value: '"200OK"',
    good: () => drive(respond("200 OK")),
    bad: () => drive(respond("200OK")),
  },
  {
    rule: "status",
    party: "application",
    title: "the status is a string",
    value: "200",
    good: () => drive(respond("200 OK")),
    bad: () => drive(respond(200 as unknown as string)),
  },
  {
    rule: "status",
    party: "application",
    title: "no 1xx: interim responses belong to the server",
    value: '"101 Switching Protocols"',
    good: () => drive(respond("299 Custom")),
    bad: () => drive(respond("101 Switching Protocols")),
  },
  {
    rule: "status",
    party: "application",
    title: "codes stop at 599",
    value: '"600 Beyond"',
    good: () => drive(respond("599 Network Connect Timeout")),
    bad: () => drive(respond("600 Beyond")),
  },
  {
    rule: "status",
    party: "application",
    title: "the reason phrase cannot split the response",
    value: '"200 OK\\r\\nX-Evil: 1"',
    good: () => drive(respond("200 Tout va bien")),
    bad: () => drive(respond("200 OK\r\nX-Evil: 1")),
  },

  // -- response headers
  {
    rule: "response headers",
    party: "application",
    title: "headers are an Array",
    value: "a Map",
    good: () => drive(respond("200 OK", [["Content-Type", "text/plain"]])),
    bad: () => drive(respond("200 OK", new Map([["Content-Type", "text/plain"]]) as unknown as HeaderList)),
  },
  {
    rule: "response headers",
    party: "application",
    title: "each header is a pair of strings",
    value: '["Content-Type", "text/plain", "x"]',
    good: () => drive(respond("200 OK", [["Content-Type", "text/plain"], ["X-Count", "5"]])),
    bad: () => drive(respond("200 OK", [["Content-Type", "text/plain", "x"]] as unknown as HeaderList)),
  },
  {
    rule: "response headers",
    party: "application",
    title: "header values are strings",
    value: '["X-Count", 5]',
    good: () => drive(respond("200 OK", [...TEXT, ["X-Count", "5"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["X-Count", 5]] as unknown as HeaderList)),
  },
  {
    rule: "response headers",
    party: "application",
    title: "header names are tokens",
    value: '"X Name"',
    good: () => drive(respond("200 OK", [...TEXT, ["X-Name", "v"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["X Name", "v"]])),
  },
  {
    rule: "response headers",
    party: "application",
    title: "header values have no CR or LF",
    value: '"a\\nSet-Cookie: x=1"',
    good: () => drive(respond("200 OK", [...TEXT, ["X-Note", "a b"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["X-Note", "a\nSet-Cookie: x=1"]])),
  },
  {
    rule: "response headers",
    party: "application",
    title: "header values stay within Latin-1",
    value: '"snow \u2603"',
    good: () => drive(respond("200 OK", [...TEXT, ["X-Note", "snow"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["X-Note", "snow \u2603"]])),
  },

  // -- write
  {
    rule: "write",
    party: "application",
    title: "write() takes a string or bytes",
    value: "42",
    good: () =>
      drive(async (_environ, startResponse) => {
        const write = startResponse("200 OK", TEXT);
        await write("a");
        await write(bytes("b"));
        return [];
      }),
    bad: () =>
      drive(async (_environ, startResponse) => {
        const write = startResponse("200 OK", TEXT);
        await write(42 as unknown as string);
        return [];
      }),
  },
  {
    rule: "write",
    party: "application",
    title: "write() is not called from inside the body",
    value: '"late"',
    good: () =>
      drive((_environ, startResponse) => {
        const write = startResponse("200 OK", TEXT);
        void write("early");
        return (function* () {
          yield "body";
        })();
      }),
    bad: () =>
      drive((_environ, startResponse) => {
        const write = startResponse("200 OK", TEXT);
        return (function* () {
          void write("late");
          yield "body";
        })();
      }),
  },
  {
    rule: "write",
    party: "server",
    title: "write() returns a Promise",
    value: "true",
    good: () =>
      capture((validate) =>
        consume(
          validate(async (_environ, startResponse) => {
            await startResponse("200 OK", TEXT)("x");
            return [];
          })(makeEnviron(), lenientStartResponse),
        ),
      ),
    bad: () =>
      capture((validate) =>
        consume(
          validate(async (_environ, startResponse) => {
            await startResponse("200 OK", TEXT)("x");
            return [];
          })(makeEnviron(), (() => () => true) as unknown as StartResponse),
        ),
      ),
  },

  // -- the body
  {
    rule: "the body",
    party: "application",
    title: "not a bare string",
    value: '"hello"',
    good: () => drive(respond("200 OK", TEXT, ["hello"])),
    bad: () =>
      drive((_environ, startResponse) => {
        startResponse("200 OK", TEXT);
        return "hello" as unknown as ResponseBody;
      }),
  },
  {
    rule: "the body",
    party: "application",
    title: "not bare bytes",
    value: "Uint8Array(5 bytes)",
    good: () => drive(respond("200 OK", TEXT, [bytes("hello")])),
    bad: () =>
      drive((_environ, startResponse) => {
        startResponse("200 OK", TEXT);
        return bytes("hello") as unknown as ResponseBody;
      }),
  },
  {
    rule: "the body",
    party: "application",
    title: "a body, not undefined",
    value: "undefined",
    good: () => drive(respond("204 No Content", [], [])),
    bad: () =>
      drive((_environ, startResponse) => {
        startResponse("204 No Content", []);
        return undefined as unknown as ResponseBody;
      }),
  },
  {
    rule: "the body",
    party: "application",
    title: "a real Promise, not a foreign thenable",
    value: "thenable",
    good: () =>
      drive(async (environ, startResponse) => {
        await Promise.resolve();
        return ok(environ, startResponse);
      }),
    bad: () =>
      drive((environ, startResponse) => {
        return { then: (resolve: (body: unknown) => void) => resolve(ok(environ, startResponse)) } as unknown as ResponseBody;
      }),
  },
  {
    rule: "the body",
    party: "application",
    title: "chunks are strings or Uint8Array",
    value: "42",
    good: () => drive(stream("200 OK", TEXT, ["a", bytes("b"), ""])),
    bad: () => drive(stream("200 OK", TEXT, ["a", 42])),
  },
  {
    rule: "the body",
    party: "application",
    title: "array chunks are strings or Uint8Array",
    value: "an ArrayBuffer",
    good: () => drive(respond("200 OK", TEXT, [bytes("ab")])),
    bad: () => drive(respond("200 OK", TEXT, [new ArrayBuffer(2)])),
  },
  {
    rule: "the body",
    party: "application",
    title: "the iterator returns iterator results",
    value: '"chunk"',
    good: () => drive(stream("200 OK", TEXT, ["chunk"])),
    bad: () =>
      drive((_environ, startResponse) => {
        startResponse("200 OK", TEXT);
        return { [Symbol.iterator]: () => ({ next: () => "chunk" }) } as unknown as ResponseBody;
      }),
  },
  {
    rule: "the body",
    party: "server",
    title: "the server iterates the body once",
    value: "a second time",
    good: () => capture((validate) => consume(validate(stream("200 OK", TEXT, ["a"]))(makeEnviron(), lenientStartResponse))),
    bad: () =>
      capture(async (validate) => {
        const body = (await validate(stream("200 OK", TEXT, ["a"]))(makeEnviron(), lenientStartResponse)) as Iterable<Chunk>;
        [...body];
        [...body];
      }),
  },

  // -- close
  {
    rule: "close",
    party: "server",
    title: "close() is called at most once",
    value: "2 times",
    good: () => capture((validate) => consume(validate(ok)(makeEnviron(), lenientStartResponse))),
    bad: () =>
      capture(async (validate) => {
        const body = await validate(ok)(makeEnviron(), lenientStartResponse);
        await body.close!();
        await body.close!();
      }),
  },
  {
    rule: "close",
    party: "server",
    title: "no chunk is asked for after close()",
    value: "after calling close()",
    good: () => capture((validate) => consume(validate(stream("200 OK", TEXT, ["a", "b"]))(makeEnviron(), lenientStartResponse))),
    bad: () =>
      capture(async (validate) => {
        const body = (await validate(stream("200 OK", TEXT, ["a", "b"]))(makeEnviron(), lenientStartResponse)) as Iterable<Chunk> & ResponseBody;
        const iterator = body[Symbol.iterator]();
        iterator.next();
        await body.close!();
        iterator.next();
      }),
  },

  // -- Content-Length
  {
    rule: "Content-Length",
    party: "application",
    title: "a streamed body never exceeds it",
    value: "produced 6 bytes",
    good: () => drive(stream("200 OK", [...TEXT, ["Content-Length", "5"]], ["hel", "lo"])),
    bad: () => drive(stream("200 OK", [...TEXT, ["Content-Length", "5"]], ["hel", "lo!"])),
  },
  {
    rule: "Content-Length",
    party: "application",
    title: "a streamed body does not end short of it",
    value: "ended after 3 bytes",
    good: () => drive(stream("200 OK", [...TEXT, ["Content-Length", "3"]], ["abc"])),
    bad: () => drive(stream("200 OK", [...TEXT, ["Content-Length", "5"]], ["abc"])),
  },
  {
    rule: "Content-Length",
    party: "application",
    title: "an array body matches it",
    value: "ended after 2 bytes",
    good: () => drive(respond("200 OK", [...TEXT, ["Content-Length", "2"]], ["ab"])),
    bad: () => drive(respond("200 OK", [...TEXT, ["Content-Length", "9"]], ["ab"])),
  },
  {
    rule: "Content-Length",
    party: "application",
    title: "write() and the body count together",
    value: "produced 4 bytes",
    good: () =>
      drive(async (_environ, startResponse) => {
        await startResponse("200 OK", [...TEXT, ["Content-Length", "3"]])("ab");
        return ["c"];
      }),
    bad: () =>
      drive(async (_environ, startResponse) => {
        await startResponse("200 OK", [...TEXT, ["Content-Length", "3"]])("ab");
        return ["cd"];
      }),
  },
  {
    rule: "Content-Length",
    party: "application",
    title: "the value is digits",
    value: '"five"',
    good: () => drive(respond("200 OK", [...TEXT, ["content-length", "3"]], ["ok\n"])),
    bad: () => drive(respond("200 OK", [...TEXT, ["Content-Length", "five"]], ["ok\n"])),
  },
  {
    rule: "Content-Length",
    party: "application",
    title: "the header appears once",
    value: "more than once",
    good: () => drive(respond("200 OK", [...TEXT, ["Content-Length", "3"]], ["ok\n"])),
    bad: () => drive(respond("200 OK", [...TEXT, ["Content-Length", "3"], ["content-length", "3"]], ["ok\n"])),
  },

  // -- HEAD and bodiless statuses
  {
    rule: "HEAD and bodiless statuses",
    party: "application",
    title: "a 204 has no Content-Length",
    value: '"0"',
    good: () => drive(respond("204 No Content", [], [])),
    bad: () => drive(respond("204 No Content", [["Content-Length", "0"]], [])),
  },
  {
    rule: "Content-Length",
    party: "application",
    title: "HEAD may declare the GET body's length and send none",
    value: "ended after 0 bytes",
    good: () => drive(respond("200 OK", [...TEXT, ["Content-Length", "100"]], []), makeEnviron({ method: "HEAD" })),
    bad: () => drive(respond("200 OK", [...TEXT, ["Content-Length", "100"]], []), makeEnviron({ method: "GET" })),
  },

  // -- hop-by-hop headers
  {
    rule: "hop-by-hop headers",
    party: "application",
    title: "no Connection header",
    value: '"Connection"',
    good: () => drive(respond("200 OK", [...TEXT, ["Cache-Control", "no-store"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["Connection", "close"]])),
  },
  {
    rule: "hop-by-hop headers",
    party: "application",
    title: "no Transfer-Encoding header, in any case",
    value: '"transfer-encoding"',
    good: () => drive(stream("200 OK", TEXT, ["streamed"])),
    bad: () => drive(stream("200 OK", [...TEXT, ["transfer-encoding", "chunked"]], ["streamed"])),
  },
];

describe("validator: hard rules", () => {
  it.each(hardCases)("$rule — $title: kept", async (testCase) => {
    const run = await testCase.good();
    expect(run.error).toBeUndefined();
    expect(run.warnings.map((warning) => warning.message)).toEqual([]);
  });

  it.each(hardCases)("$rule — $title: broken", async (testCase) => {
    const { error } = await testCase.bad();
    expect(error).toBeInstanceOf(TsgiValidationError);
    const violation = error as TsgiValidationError;
    expect(violation).toBeInstanceOf(TsgiContractError);
    expect(violation.message).toContain(`(docs/tsgi.md, ${testCase.rule})`);
    expect(violation.message).toContain(testCase.value);
    expect(violation.rule).toBe(testCase.rule);
    expect(violation.party).toBe(testCase.party);
  });
});

// ---------------------------------------------------------------------------
// Soft rules: warnings, and the response still goes out
// ---------------------------------------------------------------------------

interface SoftCase {
  rule: RuleName;
  party: Party;
  title: string;
  value: string;
  good: () => Promise<Run>;
  bad: () => Promise<Run>;
}

/** An app that starts a 200, then replaces it with a 503, passing `excInfo` as it must. */
function replaced(excInfo: unknown): TsgiApp {
  return (_environ, startResponse) => {
    startResponse("200 OK", TEXT);
    startResponse("503 Service Unavailable", TEXT, excInfo);
    return ["unavailable\n"];
  };
}

const softCases: SoftCase[] = [
  {
    rule: "REQUEST_METHOD",
    party: "server",
    title: "a method with lower-case letters",
    value: '"get"',
    good: withEnviron(asIs),
    bad: withEnviron((environ) => (environ.REQUEST_METHOD = "get")),
  },
  {
    rule: "server and client keys",
    party: "server",
    title: "an empty SERVER_NAME",
    value: '""',
    good: withEnviron(asIs),
    bad: withEnviron((environ) => (environ.SERVER_NAME = "")),
  },
  {
    rule: "extension keys",
    party: "server",
    title: "an unknown tsgi.* key",
    value: '"tsgi.user"',
    good: withEnviron((environ) => (environ["myauth.user"] = "ada")),
    bad: withEnviron((environ) => (environ["tsgi.user"] = "ada")),
  },
  {
    rule: "extension keys",
    party: "server",
    title: "an extension key without a prefix",
    value: '"user"',
    good: withEnviron((environ) => (environ["myauth.user"] = "ada")),
    bad: withEnviron((environ) => (environ.user = "ada")),
  },
  {
    rule: "status",
    party: "application",
    title: "an empty reason phrase",
    value: '"200 "',
    good: () => drive(respond("200 OK")),
    bad: () => drive(respond("200 ")),
  },
  {
    rule: "response headers",
    party: "application",
    title: 'a header name with "_"',
    value: '"X_Trace"',
    good: () => drive(respond("200 OK", [...TEXT, ["X-Trace", "1"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["X_Trace", "1"]])),
  },
  {
    rule: "response headers",
    party: "application",
    title: "a value with surrounding whitespace",
    value: '" padded "',
    good: () => drive(respond("200 OK", [...TEXT, ["X-Note", "padded"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["X-Note", " padded "]])),
  },
  {
    rule: "response headers",
    party: "application",
    title: "a value with non-ASCII Latin-1 characters",
    value: '"caf\u00e9"',
    good: () => drive(respond("200 OK", [...TEXT, ["X-Note", "cafe"]])),
    bad: () => drive(respond("200 OK", [...TEXT, ["X-Note", "caf\u00e9"]])),
  },
  {
    rule: "response headers",
    party: "application",
    title: "a CGI Status header",
    value: '"404 Not Found"',
    good: () => drive(respond("404 Not Found")),
    bad: () => drive(respond("200 OK", [...TEXT, ["Status", "404 Not Found"]])),
  },
  {
    rule: "response headers",
    party: "application",
    title: "Content-Type twice",
    value: '"text/html"',
    good: () => drive(respond("200 OK", [["Content-Type", "text/html"]])),
    bad: () => drive(respond("200 OK", [["Content-Type", "text/plain"], ["Content-Type", "text/html"]])),
  },
  {
    rule: "response headers",
    party: "application",
    title: "a body without Content-Type",
    value: "200 response has a body",
    good: () => drive(respond("200 OK", [], [])),
    bad: () => drive(respond("200 OK", [], ["{}"])),
  },
  {
    rule: "excInfo",
    party: "application",
    title: "excInfo that is not an Error",
    value: '"database down"',
    good: () => drive(replaced(new Error("database down"))),
    bad: () => drive(replaced("database down")),
  },
  {
    rule: "excInfo",
    party: "server",
    title: "a server that accepts excInfo after the body started",
    value: "after 5 body bytes",
    good: () => capture((validate) => consume(validate(replaced(new Error("x")))(makeEnviron(), lenientStartResponse))),
    bad: () =>
      capture((validate) =>
        consume(
          validate((_environ, startResponse) => {
            startResponse("200 OK", TEXT);
            return (function* () {
              yield "first";
              startResponse("500 Internal Server Error", TEXT, new Error("too late"));
              yield "second";
            })();
          })(makeEnviron(), lenientStartResponse),
        ),
      ),
  },
  {
    rule: "the body",
    party: "application",
    title: "a string chunk with half a surrogate pair",
    value: '"snow \\ud83d"',
    good: () => drive(stream("200 OK", TEXT, ["snow \ud83d\ude00"])),
    bad: () => drive(stream("200 OK", TEXT, ["snow \ud83d", "\ude00"])),
  },
  {
    rule: "HEAD and bodiless statuses",
    party: "application",
    title: "body bytes on a 304",
    value: "304",
    good: () => drive(respond("304 Not Modified", [["ETag", '"v1"']], [])),
    bad: () => drive(respond("304 Not Modified", [["ETag", '"v1"']], ["stale body"])),
  },
];

describe("validator: soft rules", () => {
  it.each(softCases)("$rule — $title: quiet when kept", async (testCase) => {
    const run = await testCase.good();
    expect(run.error).toBeUndefined();
    expect(run.warnings.map((warning) => warning.message)).toEqual([]);
  });

  it.each(softCases)("$rule — $title: warns when broken", async (testCase) => {
    const run = await testCase.bad();
    expect(run.error).toBeUndefined();
    expect(run.warnings).toHaveLength(1);
    const [warning] = run.warnings;
    expect(warning).toBeInstanceOf(TsgiWarning);
    expect(warning!.message).toContain(`(docs/tsgi.md, ${testCase.rule})`);
    expect(warning!.message).toContain(testCase.value);
    expect(warning!.rule).toBe(testCase.rule);
    expect(warning!.party).toBe(testCase.party);
  });

  it("writes warnings to the server's tsgi.errors when no onWarning is given", async () => {
    const log: string[] = [];
    const sink = new CollectingSink();
    await runApp(validator(respond("200 ")), makeEnviron({}, log), sink);
    expect(log).toEqual(['tsgi validator: the status "200 " has no reason phrase (docs/tsgi.md, status)\n']);
    expect(sink.head?.status).toBe("200 ");
  });
});

describe("validator: coverage of docs/tsgi.md", () => {
  it("has a breaking case for every rule it can check", () => {
    const covered = new Set<string>([...hardCases, ...softCases].map((testCase) => testCase.rule));
    const uncovered = RULE_NAMES.filter((rule) => !covered.has(rule) && !(rule in UNCHECKED_RULES));
    expect(uncovered).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// close(), and the server side of the body
// ---------------------------------------------------------------------------

describe("validator: close()", () => {
  it("passes the server's one close() on to the app's body, on success and on error", async () => {
    for (const failing of [false, true]) {
      let closes = 0;
      const app: TsgiApp = (_environ, startResponse) => {
        startResponse("200 OK", TEXT);
        const body = (function* () {
          yield "a";
          if (failing) throw new Error("the body broke");
          yield "b";
        })();
        return Object.assign(body, { close: () => void closes++ });
      };
      const run = await drive(app);
      expect(closes).toBe(1);
      expect(run.warnings).toEqual([]);
      if (failing) expect((run.error as Error).message).toBe("the body broke");
      else expect(run.sink!.text).toBe("ab");
    }
  });

  it("closes a body it refuses, since the server never sees it", async () => {
    let closes = 0;
    const run = await drive(() => Object.assign(["no startResponse"], { close: () => void closes++ }));
    expect((run.error as TsgiValidationError).rule).toBe("startResponse");
    expect(closes).toBe(1);
  });

  it("reports a body the server never closed once it is garbage-collected", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const warnings: TsgiWarning[] = [];
    await (async () => {
      // A server that iterates the body and drops it without close().
      const body = await validator(stream("200 OK", TEXT, ["a"]), { onWarning: (warning) => warnings.push(warning) })(
        makeEnviron({ target: "/leaky" }),
        lenientStartResponse,
      );
      for (const _chunk of body as Iterable<Chunk>) {
        // discard
      }
    })();
    for (let attempt = 0; attempt < 20 && warnings.length === 0; attempt++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(warnings.map((warning) => [warning.rule, warning.party])).toEqual([["close", "server"]]);
    expect(warnings[0]!.message).toContain("never called close() on the body of GET /leaky");
  });
});

// ---------------------------------------------------------------------------
// excInfo through the real handler
// ---------------------------------------------------------------------------

describe("validator: excInfo", () => {
  it("lets the server rethrow excInfo once the headers are out, and warns about nothing", async () => {
    const failure = new Error("failed mid-stream");
    const run = await drive((_environ, startResponse) => {
      startResponse("200 OK", TEXT);
      return (function* () {
        yield "partial";
        startResponse("500 Internal Server Error", TEXT, failure);
      })();
    });
    expect(run.error).toBe(failure);
    expect(run.warnings).toEqual([]);
    expect(run.sink!.head?.code).toBe(200);
    expect(run.sink!.aborted).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// 100-continue: checking tsgi.input never starts it
// ---------------------------------------------------------------------------

describe("validator: tsgi.input and 100-continue", () => {
  function countingInput(): { input: InputStream; started: () => number } {
    let started = 0;
    return {
      started: () => started,
      input: {
        [Symbol.asyncIterator]() {
          started++; // a real server sends "100 Continue" here
          return (async function* () {
            yield bytes("ab");
          })();
        },
      },
    };
  }

  it("does not start reading the body for an app that never reads it", async () => {
    const { input, started } = countingInput();
    const environ = { ...makeEnviron({ method: "POST", headers: ["Expect", "100-continue", "Content-Length", "2"] }), "tsgi.input": input };
    const run = await drive(respond("401 Unauthorized"), environ);
    expect(run.error).toBeUndefined();
    expect(started()).toBe(0);
  });

  it("starts it exactly when the app does", async () => {
    const { input, started } = countingInput();
    const environ = { ...makeEnviron({ method: "POST", headers: ["Expect", "100-continue", "Content-Length", "2"] }), "tsgi.input": input };
    let startedBeforeRead = -1;
    const run = await drive(async (env, startResponse) => {
      startedBeforeRead = started();
      return readBody(env, startResponse);
    }, environ);
    expect(run.sink!.text).toBe("2\n");
    expect([startedBeforeRead, started()]).toEqual([0, 1]);
  });
});

// ---------------------------------------------------------------------------
// Valid apps pass through unchanged
// ---------------------------------------------------------------------------

const validApps: Array<[name: string, app: TsgiApp, request?: RequestSpec]> = [
  ["an array", ok],
  ["an empty array", respond("200 OK", TEXT, [])],
  ["bytes and text mixed, streamed", stream("200 OK", TEXT, ["h\u00e9", bytes("llo"), "", " \ud83d\ude00"])],
  [
    "an async generator",
    (_environ, startResponse) => {
      startResponse("201 Created", [...TEXT, ["Location", "/items/7"], ["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]]);
      return (async function* () {
        yield "created ";
        await new Promise((resolve) => setTimeout(resolve, 1));
        yield "item 7\n";
      })();
    },
  ],
  [
    "write() then an array",
    async (_environ, startResponse) => {
      const write = startResponse("200 OK", TEXT);
      await write("one ");
      await write(bytes("two "));
      return ["three"];
    },
  ],
  ["a declared Content-Length, streamed", stream("200 OK", [...TEXT, ["Content-Length", "11"]], ["hello", " ", "world"])],
  ["HEAD with the GET body", ok, { method: "HEAD" }],
  ["a 204", respond("204 No Content", [], [])],
  ["a 304 with the representation's length", respond("304 Not Modified", [["ETag", '"v1"'], ["Content-Length", "120"]], [])],
  ["a response replaced with excInfo", replaced(new Error("database down"))],
  ["the request body echoed back", (environ, startResponse) => {
    startResponse("200 OK", [["Content-Type", "application/octet-stream"]]);
    return environ["tsgi.input"];
  }, { method: "POST", headers: ["Content-Length", "4"], body: [Uint8Array.of(0, 255), Uint8Array.of(128, 10)] }],
  ["an error before any chunk: the server's 500", () => {
    throw new Error("boom");
  }],
];

describe("validator: valid apps pass through unchanged", () => {
  it.each(validApps)("%s", async (_name, app, request) => {
    const plain = new CollectingSink();
    const plainOutcome = await runApp(app, makeEnviron(request), plain);
    const checked = await drive(app, makeEnviron(request));
    const sink = checked.sink!;

    expect(checked.warnings.map((warning) => warning.message)).toEqual([]);
    expect(sink.head).toEqual(plain.head);
    expect(sink.bytes).toEqual(plain.bytes);
    expect([sink.ended, sink.aborted]).toEqual([plain.ended, plain.aborted]);
    expect(checked.error === undefined).toBe(plainOutcome.error === undefined);
  });
});

describe("validator: never mutates what passes through", () => {
  it("leaves the server's environ as it was and shows the app the same values", async () => {
    const environ = makeEnviron({ method: "POST", target: "/a%20b?x=1", headers: ["Content-Type", "text/plain", "Content-Length", "0", "Cookie", "a=1", "Cookie", "b=2"] });
    const before = { ...environ };
    let seen: Environ | undefined;
    await drive((env, startResponse) => {
      seen = env;
      env.PATH_INFO = "/changed by the app";
      return ok(env, startResponse);
    }, environ);

    expect(Object.keys(environ)).toEqual(Object.keys(before));
    for (const key of Object.keys(before)) expect(Object.is(environ[key], before[key]), key).toBe(true);
    expect(seen).not.toBe(environ);
    for (const key of Object.keys(before)) {
      if (key === "tsgi.input" || key === "tsgi.errors" || key === "PATH_INFO") continue;
      expect(Object.is(seen![key], before[key]), key).toBe(true);
    }
  });

  it("hands the server the app's own status, header list and chunks", async () => {
    const headers: HeaderList = [["Content-Type", "application/octet-stream"]];
    const chunks = [bytes("one"), bytes("two")];
    const received: { status?: string; headers?: HeaderList; chunks: unknown[] } = { chunks: [] };
    const serverStartResponse: StartResponse = (status, list) => {
      received.status = status;
      received.headers = list;
      return noWrite;
    };
    const body = await validator((_environ, startResponse) => {
      startResponse("200 OK", headers);
      return (function* () {
        yield* chunks;
      })();
    })(makeEnviron(), serverStartResponse);
    for (const chunk of body as Iterable<Chunk>) received.chunks.push(chunk);
    await body.close?.();

    expect(received.status).toBe("200 OK");
    expect(received.headers).toBe(headers);
    expect(received.headers).toEqual([["Content-Type", "application/octet-stream"]]);
    expect(received.chunks).toHaveLength(2);
    expect(received.chunks[0]).toBe(chunks[0]);
    expect(received.chunks[1]).toBe(chunks[1]);
  });

  it("hands on an array body as an array of the same chunks, so that servers still measure it", async () => {
    const chunk = bytes("measured");
    const body = await validator(respond("200 OK", TEXT, [chunk]))(makeEnviron(), lenientStartResponse);
    expect(Array.isArray(body)).toBe(true);
    expect((body as Chunk[])[0]).toBe(chunk);
    await body.close?.();

    const sink = (await drive(respond("200 OK", TEXT, ["measured"]))).sink!;
    expect(sink.head?.headers).toContainEqual(["Content-Length", "8"]);
  });
});
