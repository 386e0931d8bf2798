/**
 * @module stack/code-frame
 *
 * When a reload fails because the new code does not load, the developer
 * wants the place, not a stack trace: the first `file:line:column` in the
 * worker's stderr that is the app's own source (not node_modules, not
 * node's internals), and the lines around it with a caret — what
 * `up --watch` prints, and `status` keeps, until the file is fixed.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface SourceLocation {
  file: string;
  line: number;
  column?: number;
}

/** An absolute path, or a file: URL (ESM stack frames), to a source file, then :line and maybe :column. */
const LOCATION = /(file:\/\/)?(\/[^\s:()'"]+\.(?:[cm]?[jt]sx?|json)):(\d+)(?::(\d+))?/g;

/** The first location in `lines` that points into a source file outside node_modules; columns count from 1. */
export function firstSourceLocation(lines: readonly string[]): SourceLocation | undefined {
  for (const text of lines) {
    for (const match of text.matchAll(LOCATION)) {
      const file = match[1] ? fileURLToPath(`file://${match[2]}`) : match[2]!;
      if (file.includes("/node_modules/")) continue;
      if (match[4] === undefined) return { file, line: Number(match[3]) };
      // esbuild (a syntax error, "file:3:16: ERROR: …") counts columns from 0, V8's stack frames from 1.
      const column = Number(match[4]) + (text.includes(": ERROR:") ? 1 : 0);
      return { file, line: Number(match[3]), column };
    }
  }
  return undefined;
}

/** `file:line:column` and two lines either side, numbered, with a caret under the column. */
export function codeFrame(location: SourceLocation, context = 2): string | undefined {
  let source: string;
  try {
    source = readFileSync(location.file, "utf8");
  } catch {
    return undefined;
  }
  const lines = source.split(/\r?\n/);
  if (location.line < 1 || location.line > lines.length) return undefined;
  const first = Math.max(1, location.line - context);
  const last = Math.min(lines.length, location.line + context);
  const width = String(last).length;
  const out = [`${location.file}:${location.line}${location.column === undefined ? "" : `:${location.column}`}`];
  for (let number = first; number <= last; number++) {
    const marker = number === location.line ? ">" : " ";
    out.push(`${marker} ${String(number).padStart(width)} | ${lines[number - 1]}`);
    if (number === location.line && location.column !== undefined) {
      out.push(`  ${" ".repeat(width)} | ${" ".repeat(Math.max(0, location.column - 1))}^`);
    }
  }
  return out.join("\n");
}
