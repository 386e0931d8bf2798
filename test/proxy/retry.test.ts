/**
 * The retry decision as a table (proxy/retry.ts): each row a failed try, and
 * what nginx's proxy_next_upstream and the reliability matrix's U1/U2/U3/L5 rows say
 * comes next.
 */
import { describe, expect, it } from "vitest";
import { nextStep, type RetryFacts } from "../../src/proxy/retry.ts";

const base: RetryFacts = {
  failure: { kind: "connect", reused: false },
  responseBegun: false,
  method: "GET",
  replayable: true,
  nonIdempotent: false,
  tried: 1,
  tries: 3,
  raceRetried: false,
};

const rows: [string, Partial<RetryFacts>, ReturnType<typeof nextStep>][] = [
  ["a response already begun is broken, whatever failed", { responseBegun: true, failure: { kind: "dropped", reused: false } }, { step: "break" }],
  ["a timeout is 504 and never resent, not even a GET; it counts against the worker (a hung worker leaves the pool)", { failure: { kind: "timeout", reused: false } }, { step: "respond", status: 504, countAgainstWorker: true }],
  ["never connected: a GET goes to the next worker", {}, { step: "next-worker", countAgainstWorker: true }],
  ["never connected: a POST too (nothing was sent)", { method: "POST" }, { step: "next-worker", countAgainstWorker: true }],
  ["never connected, but the streamed body was read: nowhere to resend it from", { method: "POST", replayable: false }, { step: "respond", status: 502, countAgainstWorker: true }],
  ["dropped after taking it: a GET goes to the next worker", { failure: { kind: "dropped", reused: false } }, { step: "next-worker", countAgainstWorker: true }],
  ["dropped after taking it: a POST is not resent", { method: "POST", failure: { kind: "dropped", reused: false } }, { step: "respond", status: 502, countAgainstWorker: true }],
  ["…unless the app says retry.non_idempotent", { method: "POST", nonIdempotent: true, failure: { kind: "dropped", reused: false } }, { step: "next-worker", countAgainstWorker: true }],
  ["the keep-alive race (a reused connection dropped): the same worker once more, fresh", { failure: { kind: "dropped", reused: true } }, { step: "same-worker-fresh" }],
  ["the race a second time: another worker, not held against this one", { failure: { kind: "dropped", reused: true }, raceRetried: true }, { step: "next-worker", countAgainstWorker: false }],
  ["the race under a POST: not resent, not held against the worker", { method: "POST", failure: { kind: "dropped", reused: true } }, { step: "respond", status: 502, countAgainstWorker: false }],
  ["a malformed answer: 502, never resent", { failure: { kind: "protocol", reused: false } }, { step: "respond", status: 502, countAgainstWorker: true }],
  ["out of tries: 502", { tried: 3 }, { step: "respond", status: 502, countAgainstWorker: true }],
  ["retry.tries 1 means no retry at all", { tries: 1 }, { step: "respond", status: 502, countAgainstWorker: true }],
];

describe("the retry decision", () => {
  for (const [what, facts, expected] of rows) {
    it(what, () => {
      expect(nextStep({ ...base, ...facts })).toEqual(expected);
    });
  }
});
