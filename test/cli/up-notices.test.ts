/**
 * What `up` tells the user before anything runs: `--watch` with nothing to
 * watch says so, instead of doing nothing silently.
 */
import { describe, expect, it } from "vitest";
import { summaryLines, watchNotice } from "../../src/cli/commands/up.ts";
import type { PoolReport } from "../../src/supervisor/types.ts";
import type { StackConfig } from "../../src/config/schema.ts";

const config = (watch: string[][]) => ({ apps: Object.fromEntries(watch.map((globs, i) => [`app${i}`, { watch: globs }])) }) as unknown as StackConfig;

describe("up --watch", () => {
  it("says so when no app has watch globs", () => {
    expect(watchNotice("/srv/tsgi.yaml", config([[], []]), true)).toBe(
      '--watch: no app in tsgi.yaml has `watch` globs, so nothing is watched (add `watch: ["src/**"]` to an app)',
    );
  });
  it("says nothing when an app watches something, or without --watch", () => {
    expect(watchNotice("/srv/tsgi.yaml", config([[], ["src/**"]]), true)).toBeUndefined();
    expect(watchNotice("/srv/tsgi.yaml", config([[]]), false)).toBeUndefined();
  });
});

describe("up's summary", () => {
  it("lines up its columns whatever the length of the app names", () => {
    const apps = { web: { module: "/srv/web.ts", routes: [{ path: "/web" }] }, "a-rather-long-app-name": { command: "node s.js", routes: [{ path: "/long" }] } };
    const reports = Object.keys(apps).map((app) => ({ app, state: "running", instances: 1, ready: 1 }) as PoolReport);
    const lines = summaryLines({ apps } as unknown as StackConfig, reports);
    const column = (line: string) => line.indexOf("1/1 ready");
    expect(column(lines[0]!)).toBeGreaterThan("  a-rather-long-app-name".length);
    expect(column(lines[0]!)).toBe(column(lines[1]!));
  });
});
