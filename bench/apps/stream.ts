/**
 * The streaming fixture of bench/gateway.mjs: a TSGI app whose body is an
 * async generator yielding fresh 64 KiB chunks, 100 MiB in all (`?mib=N` for
 * another size), with no Content-Length (HTTP/1.1 chunked encoding).
 *
 * The generator only runs as fast as the server pulls from it, so the bytes
 * produced minus the bytes the client received are what sits in buffers: with
 * back-pressure that stays at a few MiB (socket buffers) however slow the client.
 * `GET /stats` reports the counters of the latest stream as JSON.
 *
 *   npx tsgi-stack serve bench/apps/stream.ts --no-arbiter
 */
import type { TsgiApp } from "tsgi-stack";

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

interface StreamStats {
  /** Streams started since the worker booted. */
  streams: number;
  /** Bytes the latest stream's generator has yielded. */
  producedBytes: number;
  /** The latest generator ran to its end. */
  completed: boolean;
  /** The latest generator's finally block ran (the server closed it: end, error or client abort). */
  closed: boolean;
}

const stats: StreamStats = { streams: 0, producedBytes: 0, completed: false, closed: false };

async function* generate(size: number): AsyncGenerator<Uint8Array> {
  stats.streams += 1;
  stats.producedBytes = 0;
  stats.completed = false;
  stats.closed = false;
  try {
    for (let produced = 0; produced < size; produced += CHUNK) {
      // A fresh buffer per chunk, as reading a file or a database cursor would give.
      const chunk = new Uint8Array(Math.min(CHUNK, size - produced));
      stats.producedBytes += chunk.byteLength;
      yield chunk;
    }
    stats.completed = true;
  } finally {
    stats.closed = true;
  }
}

export const app: TsgiApp = (environ, startResponse) => {
  if (environ.PATH_INFO === "/stats") {
    startResponse("200 OK", [["Content-Type", "application/json"]]);
    return [JSON.stringify(stats)];
  }
  const mib = Number(new URLSearchParams(environ.QUERY_STRING).get("mib") ?? "100");
  if (!Number.isFinite(mib) || mib <= 0) {
    startResponse("400 Bad Request", [["Content-Type", "text/plain"]]);
    return ["mib must be a positive number\n"];
  }
  startResponse("200 OK", [["Content-Type", "application/octet-stream"]]);
  return generate(Math.round(mib * MiB));
};
