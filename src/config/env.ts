/**
 * @module config/env
 *
 * `${VAR}` and `${VAR:-default}` in the config's values, expanded from the
 * environment before validation (issue #3), as Docker Compose does:
 *
 *   - `${VAR}` is VAR's value; unset, it is an error at its position (a typo in
 *     a variable name must not turn into an empty string silently).
 *   - `${VAR:-default}` is the default when VAR is unset or empty.
 *   - `$$` is a literal `$`; a `$` not followed by `{` is left alone, so that
 *     `command: "node server.js --port $PORT"` reaches the shell as written.
 *   - A plain (unquoted) scalar is typed after expansion, as if the value had
 *     been written there: `instances: ${WORKERS:-2}` is the number 2, while
 *     `"${WORKERS:-2}"` stays the string "2".
 *
 * Only values are expanded, never keys. The document is changed in place, so
 * every node keeps its position for the errors that validation finds later.
 */
import type { Scalar } from "yaml";
import type { PathSegment } from "./errors.ts";
import { type YamlSource, walkScalars } from "./yaml-source.ts";

export interface ExpansionProblem {
  segments: PathSegment[];
  message: string;
}

const REFERENCE = /\$\$|\$\{([^}]*)\}?/g;
const NAME_AND_DEFAULT = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

/** Expands one string; problems are collected, and the failed reference becomes "". */
export function expandString(text: string, env: Readonly<Record<string, string | undefined>>, problems: string[]): string {
  return text.replace(REFERENCE, (match, inner: string | undefined) => {
    if (match === "$$") return "$";
    if (!match.endsWith("}")) {
      problems.push(`unclosed ${JSON.stringify(match)}: write \${NAME} or \${NAME:-default} (and $$ for a literal $)`);
      return "";
    }
    const parsed = NAME_AND_DEFAULT.exec(inner ?? "");
    if (!parsed) {
      problems.push(`bad reference ${JSON.stringify(match)}: write \${NAME} or \${NAME:-default} (and $$ for a literal $)`);
      return "";
    }
    const [, name, fallback] = parsed as unknown as [string, string, string | undefined];
    const value = env[name];
    if (fallback !== undefined) return value === undefined || value === "" ? fallback : value;
    if (value === undefined) {
      problems.push(`\${${name}} is not set in the environment (write \${${name}:-default} to give it a default)`);
      return "";
    }
    return value;
  });
}

/** A plain scalar's text as YAML's core schema would type it. */
function typedPlain(text: string): string | number | boolean | null {
  if (text === "" || text === "~" || /^null$/i.test(text)) return null;
  if (/^(true|false)$/i.test(text)) return text.toLowerCase() === "true";
  if (/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  return text;
}

/** Expands every string value of the document in place; returns one problem per bad reference. */
export function expandEnv(source: YamlSource, env: Readonly<Record<string, string | undefined>>): ExpansionProblem[] {
  const found: ExpansionProblem[] = [];
  walkScalars(source, (scalar: Scalar, segments) => {
    if (typeof scalar.value !== "string" || !scalar.value.includes("$")) return;
    const problems: string[] = [];
    const expanded = expandString(scalar.value, env, problems);
    for (const message of problems) found.push({ segments, message });
    const hadReference = /\$\{/.test(scalar.value);
    scalar.value = scalar.type === "PLAIN" && hadReference ? typedPlain(expanded) : expanded;
  });
  return found;
}
