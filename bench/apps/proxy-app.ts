/**
 * The fixture of bench/proxy.mjs: the app behind every proxy compared there
 * (our front proxy, nginx, http-proxy, http-proxy-3, undici), served by the
 * same two gateway workers.
 *
 *   GET  /        a small text body                      ("hello\n", 6 bytes)
 *   GET  /big     1 MiB, one precomputed Buffer, with Content-Length
 *   POST /upload  reads the whole request body, answers its length in bytes
 *   GET  /json    about 20 KB of JSON, with Content-Length (the gzip pair of bench/proxy.mjs)
 *   GET  /headers the forwarding headers the worker received, as JSON (the
 *                 benchmark checks that every proxy sends the same ones)
 *
 *   npx tsgi-stack serve bench/apps/proxy-app.ts --no-arbiter
 *   curl localhost:8000/big | wc -c             -> 1048576
 *   curl --data-binary @file localhost:8000/upload
 */
import type { TsgiApp } from "tsgi-stack";

const SMALL = Buffer.from("hello\n");
const BIG = Buffer.alloc(1024 * 1024, "0123456789abcdef");
/** An API's answer: records with ids, names, numbers and flags, about 20 KB (built once). */
const JSON_BODY = Buffer.from(
  JSON.stringify(
    Array.from({ length: 190 }, (_, i) => ({ id: 1000 + i, name: `customer ${i}`, email: `user${i}@example.com`, balance: ((i * 7919) % 100000) / 100, active: i % 3 !== 0, tags: ["retail", `region-${i % 5}`] })),
  ),
);

export const app: TsgiApp = async (environ, startResponse) => {
  switch (environ.PATH_INFO) {
    case "/big":
      startResponse("200 OK", [
        ["Content-Type", "application/octet-stream"],
        ["Content-Length", String(BIG.byteLength)],
      ]);
      return [BIG];
    case "/json":
      startResponse("200 OK", [
        ["Content-Type", "application/json"],
        ["Content-Length", String(JSON_BODY.byteLength)],
      ]);
      return [JSON_BODY];
    case "/upload": {
      let bytes = 0;
      for await (const chunk of environ["tsgi.input"]) bytes += chunk.byteLength;
      const body = `${bytes}\n`;
      startResponse("200 OK", [
        ["Content-Type", "text/plain"],
        ["Content-Length", String(body.length)],
      ]);
      return [body];
    }
    case "/headers": {
      const seen = {
        host: environ.HTTP_HOST,
        x_forwarded_for: environ.HTTP_X_FORWARDED_FOR,
        x_forwarded_proto: environ.HTTP_X_FORWARDED_PROTO,
        x_forwarded_host: environ.HTTP_X_FORWARDED_HOST,
        x_request_id: environ.HTTP_X_REQUEST_ID,
        connection: environ.HTTP_CONNECTION,
      };
      startResponse("200 OK", [["Content-Type", "application/json"]]);
      return [JSON.stringify(seen)];
    }
    default:
      startResponse("200 OK", [
        ["Content-Type", "text/plain"],
        ["Content-Length", String(SMALL.byteLength)],
      ]);
      return [SMALL];
  }
};
