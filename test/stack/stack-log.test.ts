/**
 * Which format the stack's own log takes (stack/stack-log.ts): pretty on a
 * terminal, JSON lines elsewhere, unless TSGI_LOG_FORMAT says which; any
 * other value of it is refused, naming it. (What each format looks like is
 * checked on a real `up`, in test/integration/logs.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { LogFormatInvalid } from "../../src/stack/errors.ts";
import { printedLine, stackLogFormat } from "../../src/stack/stack-log.ts";

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

describe("printedLine", () => {
  it("gives a stack.log record in the words up prints on a terminal, and any other line as it is", () => {
    expect(printedLine('{"level":30,"time":"2026-12-06T12:00:00.000Z","pid":1,"msg":"serving on http://127.0.0.1:8080/"}')).toBe("tsgi-stack: serving on http://127.0.0.1:8080/");
    expect(printedLine('{"level":30,"pid":1,"app":"web","slot":0,"stream":"err","msg":"boom"}')).toBe("web.0 | boom");
    expect(printedLine('{"level":30,"summary":true,"msg":"web  2/2 ready"}')).toBe("web  2/2 ready");
    expect(printedLine("  web  2/2 ready")).toBe("  web  2/2 ready");
    expect(printedLine("{not json")).toBe("{not json");
  });
});
