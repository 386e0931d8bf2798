/**
 * The matrix's references stay true: every row names at least one test, every
 * file it names exists and contains the test text it names (a renamed test
 * would otherwise drop out of `npm run reliability` unnoticed), and record()
 * writes what the table reads.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/serve.ts";
import { MATRIX } from "./matrix.ts";
import { failedFigure, percentile, record } from "./record.ts";

describe("the reliability matrix", () => {
  it("has each id once, and every row names a test", () => {
    const ids = MATRIX.map((row) => row.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const row of MATRIX) expect(row.tests.length, row.id).toBeGreaterThan(0);
  });

  it("names only files that exist, holding the test text it names", () => {
    const wrong: string[] = [];
    for (const row of MATRIX) {
      for (const ref of row.tests) {
        // A folder reference is for suites written elsewhere; the run reports it as not run until it exists.
        if (ref.dir) continue;
        const file = path.join(ROOT, ref.file!);
        if (!existsSync(file)) wrong.push(`${row.id}: ${ref.file} does not exist`);
        else if (ref.name && !readFileSync(file, "utf8").includes(ref.name)) wrong.push(`${row.id}: ${ref.file} has no test "${ref.name}"`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe("record()", () => {
  it("appends one JSON line per row to $RELIABILITY_REPORT, naming the test, and does nothing without it", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-record-"));
    const file = path.join(dir, "rows.jsonl");
    const before = process.env.RELIABILITY_REPORT;
    try {
      delete process.env.RELIABILITY_REPORT;
      record({ id: "X1", done: "nothing", figure: "-", pass: true });
      expect(existsSync(file)).toBe(false);
      process.env.RELIABILITY_REPORT = file;
      record({ id: "X1", done: "a thing", figure: "0 / 3 failed", pass: true });
      record({ id: "X2", done: "another", figure: "1 / 3 failed", pass: false });
      const rows = readFileSync(file, "utf8").trim().split("\n").map((line) => JSON.parse(line));
      expect(rows.map((row) => [row.id, row.figure, row.pass])).toEqual([["X1", "0 / 3 failed", true], ["X2", "1 / 3 failed", false]]);
      expect(rows[0].file).toBe("test/reliability/matrix.test.ts");
      expect(rows[0].test).toBe("record() appends one JSON line per row to $RELIABILITY_REPORT, naming the test, and does nothing without it");
    } finally {
      if (before === undefined) delete process.env.RELIABILITY_REPORT;
      else process.env.RELIABILITY_REPORT = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("writes figures as failed / total with p50 and p99", () => {
    expect(percentile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 0.99)).toBe(5);
    expect(failedFigure(0, 5, [5, 1, 3, 2, 4])).toBe("0 / 5 failed, p50 3.0 ms, p99 5.0 ms");
    expect(failedFigure(2, 40)).toBe("2 / 40 failed");
  });
});
