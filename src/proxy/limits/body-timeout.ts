/**
 * @module proxy/limits/body-timeout
 *
 * nginx's client_body_timeout: the longest pause between two reads of a
 * request body, not a bound on the whole upload (a large upload at a steady
 * pace is fine). A client that stalls — the slow-POST attack (the reliability matrix
 * L4), or a client that died without closing — is told 408 and its
 * connection closed, so neither a worker nor a proxy buffer is held for it.
 * Only requests with a body are watched: a GET costs nothing here. Time
 * the proxy itself is not reading (the worker is slow to take the body, so
 * the body is paused) does not count against the client.
 */
import type { IncomingMessage } from "node:http";

/** Calls `onStall` if `req`'s body pauses for `timeoutMs`; returns a function that stops watching (also stopped by the body's end). */
export function watchBodyPace(req: IncomingMessage, timeoutMs: number, onStall: () => void): () => void {
  if (timeoutMs <= 0 || req.complete) return () => {};
  const timer = setTimeout(() => {
    if (req.isPaused()) return timer.refresh();
    stop();
    onStall();
  }, timeoutMs);
  const refresh = () => timer.refresh();
  const stop = () => {
    clearTimeout(timer);
    req.off("data", refresh);
    req.off("end", stop);
    req.off("close", stop);
  };
  // A 'data' listener alone would switch the stream to flowing: listen without taking its data.
  req.prependListener("data", refresh);
  req.once("end", stop);
  req.once("close", stop);
  return stop;
}
