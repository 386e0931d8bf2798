/**
 * A gateway worker's log lines each start with the time they were written
 * (gateway/line-stamps.ts), however its writes cut them: several lines in
 * one write, one line over several writes, a character split between two.
 */
import { describe, expect, it } from "vitest";
import { LineStamper } from "../../src/gateway/line-stamps.ts";
import { lineStampOf, withoutLineStamp } from "../../src/contract/line-stamp.ts";

const at = (ms: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, 0, ms));
const text = (stamper: LineStamper, chunk: string | Uint8Array, ms: number) =>
  stamper.stamp(typeof chunk === "string" ? Buffer.from(chunk) : chunk, at(ms)).toString("utf8");

describe("LineStamper", () => {
  it("stamps each line of a write that holds several", () => {
    expect(text(new LineStamper(), "one\ntwo\n\nfour\n", 1)).toBe(
      "2026-12-06T12:00:00.001Z one\n2026-12-06T12:00:00.001Z two\n2026-12-06T12:00:00.001Z \n2026-12-06T12:00:00.001Z four\n",
    );
  });

  it("stamps a line written in pieces once, with the time of its first piece", () => {
    const stamper = new LineStamper();
    expect(text(stamper, "said ", 1)).toBe("2026-12-06T12:00:00.001Z said ");
    expect(text(stamper, "3 ", 2)).toBe("3 ");
    expect(text(stamper, "(in two writes)\nnext", 3)).toBe("(in two writes)\n2026-12-06T12:00:00.003Z next");
    expect(text(stamper, "\n", 4)).toBe("\n");
  });

  it("keeps a character split across two writes whole", () => {
    const stamper = new LineStamper();
    const bytes = Buffer.from("é\n");
    const joined = Buffer.concat([stamper.stamp(bytes.subarray(0, 1), at(5)), stamper.stamp(bytes.subarray(1), at(6))]);
    expect(joined.toString("utf8")).toBe("2026-12-06T12:00:00.005Z é\n");
  });

  it("writes the stamp the readers read", () => {
    const line = text(new LineStamper(), "ready\n", 7).trimEnd();
    expect(lineStampOf(line)).toBe(at(7).getTime());
    expect(withoutLineStamp(line)).toBe("ready");
    expect(lineStampOf("a command app's own line")).toBeUndefined();
  });
});
