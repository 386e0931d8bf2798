/** The weight of an Accept-style member (RFC 9110 §12.4.2), as both of the proxy's negotiations read it. */
import { describe, expect, it } from "vitest";
import { qValueOf } from "../../src/http/qvalue.ts";

describe("qValueOf", () => {
  it("is 1 without a q, and the q's value when it is a qvalue", () => {
    expect(qValueOf([])).toBe(1);
    expect(qValueOf([" level=1"])).toBe(1);
    expect(qValueOf(["q=0.8"])).toBe(0.8);
    expect(qValueOf([" Q = 0.123 "])).toBe(0.123);
    expect(qValueOf(["q=1.000"])).toBe(1);
    expect(qValueOf(["q=0"])).toBe(0);
  });

  it("is 0 for a malformed q: no value, out of range, too many digits", () => {
    for (const param of ["q", "q=", "q=1.5", "q=0.1234", "q=-0.5", "q=high"]) expect(qValueOf([param]), param).toBe(0);
  });

  it("takes the first q", () => {
    expect(qValueOf(["q=0.5", "q=0.9"])).toBe(0.5);
  });
});
