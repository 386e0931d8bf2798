/**
 * The generated files under deploy/ are what the real CLI writes for
 * config.example.yaml today (deploy/generate.ts: one row per file, the CLI's
 * arguments beside it). A change to an exporter or to the example config
 * that is not carried into deploy/ fails here, naming the file and the
 * command that regenerates it. Needs the build (`npm run build`).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { GENERATED, PORTABLE, REGENERATE, ROOT, render } from "../../deploy/generate.ts";

describe("deploy/: generated files match what the CLI writes now", () => {
  it.each(GENERATED.map((row) => [row.file, row] as const))("%s", (file, row) => {
    const committed = path.join(ROOT, file);
    const written = `what \`tsgi-stack ${row.args.join(" ")}\` writes now`;
    expect(existsSync(committed), `${file} is missing: it is ${written}; regenerate deploy/ with \`${REGENERATE}\` and commit it`).toBe(true);
    expect(readFileSync(committed, "utf8"), `${file} differs from ${written}: regenerate deploy/ with \`${REGENERATE}\` and commit it`).toBe(render(row));
  });

  it("writes no path of this checkout, nor this machine's node, into a file", () => {
    for (const row of GENERATED) {
      const text = render(row);
      expect(text, row.file).not.toContain(ROOT);
      if (process.execPath !== PORTABLE.node) expect(text, row.file).not.toContain(process.execPath);
    }
  });
});
