/**
 * `tsgi-stack logs` merges an app's files by the time stamped on each line
 * (cli/logs/by-time.ts); a command app's lines carry no stamp and keep their
 * place after the stamped line before them in their file.
 */
import { describe, expect, it } from "vitest";
import { mergeByTime, timeLines } from "../../src/cli/logs/by-time.ts";

const stamp = (second: number) => `2026-12-06T12:00:0${second}.000Z`;
const file = (name: string) => ({ name, lastStamp: -Infinity });
const merged = (...files: [ReturnType<typeof file>, string[]][]) =>
  mergeByTime(files.map(([source, lines]) => timeLines(source, lines))).map((line) => `${line.source.name}: ${line.text}`);

describe("logs merged by time", () => {
  it("interleaves two slots' stamped lines by their time", () => {
    expect(merged([file("web.0"), [`${stamp(1)} a`, `${stamp(3)} c`]], [file("web.1"), [`${stamp(2)} b`, `${stamp(4)} d`]])).toEqual([
      `web.0: ${stamp(1)} a`,
      `web.1: ${stamp(2)} b`,
      `web.0: ${stamp(3)} c`,
      `web.1: ${stamp(4)} d`,
    ]);
  });

  it("keeps an unstamped line after the stamped line before it in its file, and one with none before it first", () => {
    expect(
      merged([file("web.0"), ["banner", `${stamp(2)} b`, "    at trace (b.ts:1)"]], [file("web.1"), [`${stamp(1)} a`, `${stamp(3)} c`]]),
    ).toEqual([`web.0: banner`, `web.1: ${stamp(1)} a`, `web.0: ${stamp(2)} b`, "web.0:     at trace (b.ts:1)", `web.1: ${stamp(3)} c`]);
  });

  it("never reorders a file's own lines, even when its clock stepped back", () => {
    expect(merged([file("web.0"), [`${stamp(5)} late`, `${stamp(1)} stepped back`]], [file("web.1"), [`${stamp(3)} middle`]])).toEqual([
      `web.1: ${stamp(3)} middle`,
      `web.0: ${stamp(5)} late`,
      `web.0: ${stamp(1)} stepped back`,
    ]);
  });

  it("carries a file's last stamp from one read to the next (logs -f)", () => {
    const slot = file("web.0");
    timeLines(slot, [`${stamp(4)} before`]);
    expect(merged([slot, ["unstamped, read later"]], [file("web.1"), [`${stamp(3)} earlier`]])).toEqual([
      `web.1: ${stamp(3)} earlier`,
      "web.0: unstamped, read later",
    ]);
  });
});
