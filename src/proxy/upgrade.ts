/**
 * @module proxy/upgrade
 *
 * The byte-level half of proxying an HTTP Upgrade (WebSocket): once node's
 * server has handed over the client's socket, there is no ServerResponse,
 * so answers are written as raw HTTP, and a 101 from the worker turns both
 * connections into one tunnel. Which worker, and retries, are
 * proxy/server.ts's business; this module only moves bytes and keeps the
 * rules for them:
 *   - the tunnel closes when either side closes, errors, or when nothing has
 *     moved either way for the idle timeout (nginx's proxy_read_timeout on a
 *     WebSocket);
 *   - a worker that answers the upgrade request with an ordinary response
 *     (403, 426…) has that response relayed, delimited by closing the
 *     connection, and no tunnel is made.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ResponseHead } from "./upstream/response-head.ts";
import { type Answer, REASON_PHRASES } from "./refusal.ts";
import { passesToClient } from "./respond.ts";

/**
 * Writes one of the proxy's own answers (proxy/refusal.ts) on a raw client
 * socket and closes it: after an upgrade request nothing else on the
 * connection is read. Returns the body bytes written.
 */
export function rawAnswer(socket: Duplex, answer: Answer, requestId: string): number {
  const body = `${answer.text}\n`;
  let head = `HTTP/1.1 ${answer.status} ${REASON_PHRASES[answer.status] ?? ""}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(answer.headers)) head += `${name}: ${value}\r\n`;
  head += `X-Request-Id: ${requestId}\r\n`;
  if (socket.writable) socket.end(`${head}\r\n${body}`);
  else socket.destroy();
  return Buffer.byteLength(body);
}

/**
 * The head of a worker's answer, for the client: hop-by-hop headers dropped,
 * except that a 101 keeps its Upgrade and `Connection: upgrade`, and any
 * other answer is delimited by closing the connection.
 */
export function relayedHead(head: ResponseHead, requestId: string): string {
  const switching = head.status === 101;
  let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
  const raw = head.headers;
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    const keep = switching && lower === "upgrade" ? true : lower !== "content-length" && passesToClient(lower, head.status, head.connectionTokens, seen);
    if (keep) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  text += switching ? "Connection: upgrade\r\n" : "Connection: close\r\n";
  return `${text}X-Request-Id: ${requestId}\r\n\r\n`;
}

export interface TunnelOptions {
  idleTimeoutMs: number;
  /** Called once, when both sides are closed, with the bytes that went to the client. */
  onClose(bytesToClient: number): void;
}

/**
 * Joins the client's socket and the worker's after a 101. `clientHead` and
 * `workerRest` are the bytes each side sent past its head (node and the
 * response reader had already taken them off the sockets).
 */
export function tunnel(client: Duplex, worker: Socket, clientHead: Buffer, workerRest: Buffer, options: TunnelOptions): { close(): void } {
  let bytesToClient = workerRest.byteLength;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(idle);
    client.destroy();
    worker.destroy();
    options.onClose(bytesToClient);
  };
  const idle = setTimeout(close, options.idleTimeoutMs);
  const active = () => idle.refresh();
  if (workerRest.byteLength) client.write(workerRest);
  if (clientHead.byteLength) worker.write(clientHead);
  worker.on("data", (chunk: Buffer) => {
    bytesToClient += chunk.byteLength;
    active();
  });
  client.on("data", active);
  // pipe() keeps back-pressure both ways and passes a half-close (FIN) on; errors and closes end the pair.
  worker.pipe(client);
  client.pipe(worker);
  for (const side of [client, worker]) {
    side.on("error", close);
    side.on("close", close);
  }
  worker.setNoDelay?.(true);
  return { close };
}
