/**
 * Which format the stack's own log takes (stack/stack-log.ts): pretty on a
 * terminal, JSON lines elsewhere, unless TSGI_LOG_FORMAT says which; any
 * other value of it is refused, naming it. (What each format looks like is
 * checked on a real `up`, in test/integration/logs.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { LogFormatInvalid } from "../../src/stack/errors.ts";
import { stackLogFormat } from "../../src/stack/stack-log.ts";

describe("the stack log's format", () => {
  it("is pretty on a terminal and JSON on a pipe or a file, by default", () => {
    expect(stackLogFormat({}, true)).toBe("pretty");
    expect(stackLogFormat({}, false)).toBe("json");
    expect(stackLogFormat({ TSGI_LOG_FORMAT: "" }, false)).toBe("json");
  });

  it("is what TSGI_LOG_FORMAT says, whatever the output is", () => {
    expect(stackLogFormat({ TSGI_LOG_FORMAT: "json" }, true)).toBe("json");
    expect(stackLogFormat({ TSGI_LOG_FORMAT: "pretty" }, false)).toBe("pretty");
  });

  it("refuses any other TSGI_LOG_FORMAT, naming the variable and the two formats", () => {
    expect(() => stackLogFormat({ TSGI_LOG_FORMAT: "JSON" }, false)).toThrow(LogFormatInvalid);
    expect(() => stackLogFormat({ TSGI_LOG_FORMAT: "xml" }, false)).toThrow('TSGI_LOG_FORMAT=xml: the stack\'s log format is "pretty" or "json"');
  });
});
