/**
 * The worker contract's own rules (src/contract/), each stated once: the
 * values its users get, tested here instead of comparing copies.
 */
import { describe, expect, it } from "vitest";
import { AddressError, formatAddress, formatHostPort, parseAddress } from "../../src/contract/address.ts";
import { ExitCode, exitCodeName, isFatalExit } from "../../src/contract/exit-codes.ts";
import { beatPeriodMs, staleAfterMs } from "../../src/contract/heartbeat.ts";
import { FIELD_NAME, FIELD_VALUE, TCHAR, TOKEN } from "../../src/contract/http-grammar.ts";
import { readyMessage, readyPid, retiringMessage } from "../../src/contract/messages.ts";
import { parseModuleSpec } from "../../src/contract/module-spec.ts";
import { KILL_MARGIN_MS, killTimeoutMs } from "../../src/contract/stopping.ts";

describe("exit codes", () => {
  it("are fatal (no restart) for a boot or app-load error only", () => {
    expect([0, 1, 3, 4, 5, 137, null].filter(isFatalExit)).toEqual([ExitCode.BOOT_ERROR, ExitCode.APP_LOAD_ERROR]);
    expect(exitCodeName(4)).toBe("APP_LOAD_ERROR");
    expect(exitCodeName(1)).toBeUndefined();
  });
});

describe("messages", () => {
  it("carry the pid and listeners, and the pid reads back from what arrives over IPC", () => {
    expect(readyMessage(7, ["http://127.0.0.1:1"])).toEqual({ type: "tsgi:ready", data: { pid: 7, listeners: ["http://127.0.0.1:1"] } });
    expect(retiringMessage(7, ExitCode.TIMEOUT)).toEqual({ type: "tsgi:retiring", data: { pid: 7, code: 5 } });
    expect(readyPid(readyMessage(7, []).data)).toBe(7);
    expect(readyPid(undefined)).toBe(0);
  });
});

describe("heartbeat and stopping", () => {
  it("beat ~10% of the timeout, 50 ms to 1 s, and a file is stale one beat after the timeout", () => {
    expect([1, 500, 10_000, 600_000].map(beatPeriodMs)).toEqual([50, 50, 1000, 1000]);
    expect(staleAfterMs(30_000)).toBe(31_000);
  });

  it("kill a stopping worker a margin after its graceful timeout", () => {
    expect(killTimeoutMs(5000)).toBe(5000 + KILL_MARGIN_MS);
  });
});

describe("addresses", () => {
  it.each([
    ["127.0.0.1:8000", { kind: "tcp", host: "127.0.0.1", port: 8000 }],
    [":0", { kind: "tcp", host: "127.0.0.1", port: 0 }],
    ["[::1]:80", { kind: "tcp", host: "::1", port: 80 }],
    ["unix:/run/a.sock", { kind: "unix", path: "/run/a.sock" }],
    ["/run/a.sock", { kind: "unix", path: "/run/a.sock" }],
  ])("read %s", (text, address) => {
    expect(parseAddress(text, "--uwsgi")).toEqual(address);
  });

  it("name the flag of a bad value, and take no unix path where none is allowed", () => {
    expect(() => parseAddress("localhost", "--http")).toThrow(new AddressError("--http", "localhost", "HOST:PORT, such as 127.0.0.1:8000"));
    expect(() => parseAddress("1.2.3.4:70000", "--http")).toThrow(/--http "1.2.3.4:70000"/);
    expect(() => parseAddress("/run/a.sock", "--http", false)).toThrow(AddressError);
  });

  it("write back as flags and logs read them", () => {
    for (const text of ["127.0.0.1:8000", "[::1]:80"]) {
      const address = parseAddress(text, "--http", false);
      expect(address.kind === "tcp" && formatHostPort(address)).toBe(text);
    }
    expect(formatAddress({ kind: "unix", path: "/a.sock" }, "uwsgi")).toBe("uwsgi+unix:/a.sock");
    expect(formatAddress({ kind: "tcp", host: "::1", port: 1 }, "http")).toBe("http://[::1]:1");
  });
});

describe("module specs", () => {
  it.each([
    ["app.ts", { modulePath: "app.ts" }],
    ["app.ts:handler", { modulePath: "app.ts", exportName: "handler" }],
    ["dir/app.ts:default", { modulePath: "dir/app.ts", exportName: "default" }],
    ["C:/x/app.ts", { modulePath: "C:/x/app.ts" }],
    ["app.ts:not-an-identifier", { modulePath: "app.ts:not-an-identifier" }],
    [":x", { modulePath: ":x" }],
    ["a:b:c", { modulePath: "a:b", exportName: "c" }],
    ["a.ts:$h_1", { modulePath: "a.ts", exportName: "$h_1" }],
  ])("split %s", (spec, parts) => {
    expect(parseModuleSpec(spec)).toEqual(parts);
  });
});

describe("HTTP grammar", () => {
  it("takes tokens and field names of tchar only", () => {
    for (const good of ["GET", "X-Custom_1", "!#$%&'*+-.^_`|~"]) expect(TOKEN.test(good)).toBe(true);
    for (const bad of ["", "a b", "a:b", "a\r", "é", '"x"', "(x)"]) expect(FIELD_NAME.test(bad)).toBe(false);
    expect(TCHAR.test("a")).toBe(true);
    expect(TCHAR.test(" ")).toBe(false);
  });

  it("takes field values with tabs, spaces and obs-text, never a control character", () => {
    for (const good of ["", "a b\tc", "\x80\xff"]) expect(FIELD_VALUE.test(good)).toBe(true);
    for (const bad of ["a\r\nb", "a\nb", "\0", "\x7f", "\u0100"]) expect(FIELD_VALUE.test(bad)).toBe(false);
  });
});
