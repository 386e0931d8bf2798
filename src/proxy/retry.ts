/**
 * @module proxy/retry
 *
 * What a failed try at a worker leads to, as one pure decision (Caddy's
 * retry rules and nginx's proxy_next_upstream, in a table the tests read):
 *
 *   - the response had begun        -> break the client's response (never pass a
 *                                      broken message off as complete); not the worker's fault
 *   - the worker timed out          -> 504, not resent (it may still be working on it);
 *                                      held against the worker (passive health)
 *   - a kept-alive connection was
 *     dropped under an idempotent,
 *     replayable request, the first
 *     time                           -> the same worker again on a fresh connection
 *                                      (the keep-alive race: not the worker's fault)
 *   - never connected               -> another worker, any method, if the body can be
 *                                      sent again (nothing was sent)
 *   - dropped after taking it       -> another worker only if the request may be resent:
 *                                      idempotent, or `retry.non_idempotent`
 *   - a malformed answer            -> 502, never resent
 *   - out of tries (or workers)     -> 502
 */
import type { FailureKind } from "./upstream/connection.ts";

/** The methods that may be resent after a worker took them (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

export interface RetryFacts {
  failure: { kind: FailureKind; reused: boolean };
  /** Response bytes already went to the client. */
  responseBegun: boolean;
  method: string;
  /** The body can be sent again: read whole (or kept), or not read at all. */
  replayable: boolean;
  /** `retry.non_idempotent` for the app. */
  nonIdempotent: boolean;
  /** Workers tried so far, and how many the app allows (`retry.tries`). */
  tried: number;
  tries: number;
  /** The one fresh-connection resend for the keep-alive race was used already. */
  raceRetried: boolean;
}

export type RetryStep =
  | { step: "break" }
  | { step: "respond"; status: 502 | 504; countAgainstWorker: boolean }
  | { step: "same-worker-fresh" }
  | { step: "next-worker"; countAgainstWorker: boolean };

export function nextStep(facts: RetryFacts): RetryStep {
  const { failure } = facts;
  if (facts.responseBegun) return { step: "break" };
  // A worker silent past upstream_timeout counts as failed (nginx's max_fails counts timeouts too): a hung
  // worker — stopped, or stuck in a loop — is left out for fail_timeout instead of taking half the traffic.
  if (failure.kind === "timeout") return { step: "respond", status: 504, countAgainstWorker: true };
  const idempotent = IDEMPOTENT_METHODS.has(facts.method);
  const race = failure.kind === "dropped" && failure.reused;
  if (race && facts.replayable && idempotent && !facts.raceRetried) return { step: "same-worker-fresh" };
  // A reused connection closed under us is the race, not a sign the worker is failing.
  const countAgainstWorker = !race;
  const mayResend = facts.replayable && (idempotent || facts.nonIdempotent);
  const retry = failure.kind === "connect" ? facts.replayable : failure.kind === "dropped" && mayResend;
  if (retry && facts.tried < facts.tries) return { step: "next-worker", countAgainstWorker };
  return { step: "respond", status: 502, countAgainstWorker };
}
