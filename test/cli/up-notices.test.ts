/**
 * What `up` tells the user before anything runs: `--watch` with nothing to
 * watch says so, instead of doing nothing silently.
 */
import { describe, expect, it } from "vitest";
import { watchNotice } from "../../src/cli/commands/up.ts";
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
