/**
 * `scale APP N`, `scale APP +K`, `scale APP -K`: the number asked of the
 * stack, counted from the pool as it runs, and the refusals, each naming the
 * app (the integration test drives the same through a real stack).
 */
import { describe, expect, it } from "vitest";
import { parseScaleCount, targetInstances } from "../../src/cli/scale-count.ts";
import { MAX_INSTANCES } from "../../src/contract/limits.ts";
import type { StackStatus } from "../../src/stack/status.ts";

const status = {
  apps: [
    { app: "web", kind: "module", routes: ["*/"] },
    { app: "docs", kind: "static", routes: ["*/docs"] },
  ],
  pools: [{ app: "web", state: "running", instances: 3, ready: 3, configured: 2, inPool: 3 }],
} as unknown as StackStatus;

describe("scale's count", () => {
  it("is a count, or a change counted from the workers that run now (not the config's)", () => {
    expect(targetInstances("web", parseScaleCount("web", "5"), status)).toBe(5);
    expect(targetInstances("web", parseScaleCount("web", "+1"), status)).toBe(4);
    expect(targetInstances("web", parseScaleCount("web", "-2"), status)).toBe(1);
  });

  it("refuses what is neither, and counts out of bounds, as usage errors naming the app", () => {
    expect(() => parseScaleCount("web", "0")).toThrow(`scale web 0: N must be a whole number from 1 to ${MAX_INSTANCES}`);
    expect(() => parseScaleCount("web", "two")).toThrow("scale web two: N must be a whole number from 1 to 256, or +K / -K to add or remove workers");
    expect(() => targetInstances("web", parseScaleCount("web", "-3"), status)).toThrow(
      "scale web -3: web runs 3 worker(s); an app keeps at least 1 (`down` stops the stack)",
    );
    expect(() => targetInstances("web", parseScaleCount("web", "+254"), status)).toThrow("scale web +254: web runs 3 worker(s); an app runs at most 256");
  });

  it("refuses an unknown or static app as the stack does", () => {
    expect(() => targetInstances("nope", parseScaleCount("nope", "+1"), status)).toThrow('no app named "nope" (apps: web, docs)');
    expect(() => targetInstances("docs", parseScaleCount("docs", "-1"), status)).toThrow('cannot scale "docs": it is a static app');
  });
});
