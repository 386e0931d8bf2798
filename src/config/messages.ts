/**
 * @module config/messages
 *
 * TypeBox's validation errors ("Expected union value" at `/apps/hello/timeout`)
 * turned into what a user can act on (issue #3): the key path, what was
 * expected — in words taken from the schema itself (FORMATS, the choices of a
 * union, an integer's minimum) — and what was found:
 *
 *   apps.hello.timeout: expected a duration such as 30s, 500ms, 2m or 1m30s, got "abc"
 *   apps.hello.instancs: unknown key (did you mean `instances`?)
 *
 * One message per key path: a missing key is reported as missing, not also as
 * "not a string". Pure: schema and value in, problems out.
 */
import type { TSchema } from "@sinclair/typebox";
import type { ValueError } from "@sinclair/typebox/value";
import { Kind, Value, ValueErrorType } from "./typebox.ts";
import type { PathSegment } from "./errors.ts";
import { type AnySchema, FORMAT, FORMATS, type FormatName, KEY_FORMAT } from "./schema.ts";
import { nearest } from "./suggest.ts";

export interface SchemaProblem {
  segments: PathSegment[];
  message: string;
}

const schemaOf = (schema: TSchema): AnySchema => schema as AnySchema;

function formatOf(schema: AnySchema, keyword = FORMAT): FormatName | undefined {
  const format = schema[keyword];
  return typeof format === "string" && format in FORMATS ? (format as FormatName) : undefined;
}

/** The literal choices of a union of literals (`balance`, `interface`, a redirect's `status`), else undefined. */
export function choicesOf(schema: AnySchema): string[] | undefined {
  const anyOf = schema.anyOf;
  if (!Array.isArray(anyOf) || !anyOf.every((member) => typeof member?.const === "string" || typeof member?.const === "number")) return undefined;
  return anyOf.map((member) => String(member.const));
}

const PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./*@ -]*$/;

/** A value as YAML flow style writes it: `[{ path: /api }]`, for "such as ..." in messages. */
export function inlineYaml(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inlineYaml).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    return `{ ${Object.entries(value).map(([key, child]) => `${key}: ${inlineYaml(child)}`).join(", ")} }`;
  }
  return typeof value === "string" && !PLAIN.test(value) ? JSON.stringify(value) : String(value);
}

/** The schema's first example, or its default when that is not empty: for "such as ...". */
function exampleOf(schema: AnySchema): unknown {
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  const fallback = schema.default;
  const empty = fallback === undefined || (typeof fallback === "object" && fallback !== null && Object.keys(fallback).length === 0);
  return empty ? undefined : fallback;
}

/** What a value of this schema looks like, in words: the phrase after "expected". */
export function expectedOf(schema: AnySchema): string {
  const format = formatOf(schema);
  if (format) return FORMATS[format].expected;
  const choices = choicesOf(schema);
  if (choices) return `one of ${choices.join(", ")}`;
  switch (schema[Kind]) {
    case "Integer": {
      const { minimum, maximum } = schema;
      if (typeof minimum === "number" && typeof maximum === "number") return `a whole number from ${minimum} to ${maximum}`;
      return typeof minimum === "number" ? `a whole number >= ${minimum}` : "a whole number";
    }
    case "Number":
      return "a number";
    case "Boolean":
      return "true or false";
    case "String":
      return schema.minLength ? "a non-empty string" : "a string";
    case "Array":
    case "Object":
    case "Record": {
      const example = exampleOf(schema);
      const noun = schema[Kind] === "Array" ? "a list" : "a mapping";
      return example === undefined ? noun : `${noun} such as ${inlineYaml(example)}`;
    }
    default:
      return "a valid value";
  }
}

/** The value found, in words: strings quoted, containers named. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a mapping";
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** JSON Pointer -> key path, with list indexes as numbers (they are printed `[0]`). */
function segmentsOf(pointer: string, root: unknown): PathSegment[] {
  const segments: PathSegment[] = [];
  let node = root;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const segment = Array.isArray(node) && /^\d+$/.test(key) ? Number(key) : key;
    segments.push(segment);
    node = node !== null && typeof node === "object" ? (node as Record<PathSegment, unknown>)[segment] : undefined;
  }
  return segments;
}

function unknownKey(parent: AnySchema, key: string): string {
  if (parent[Kind] === "Record") {
    const format = formatOf(parent, KEY_FORMAT);
    return `bad name ${JSON.stringify(key)}: expected ${format ? FORMATS[format].expected : "a valid name"}`;
  }
  const known = Object.keys((parent.properties as Record<string, unknown> | undefined) ?? {});
  const suggestion = nearest(key, known);
  return suggestion ? `unknown key (did you mean \`${suggestion}\`?)` : `unknown key (expected one of: ${known.join(", ")})`;
}

function messageOf(error: ValueError, key: string): string {
  const schema = schemaOf(error.schema);
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return unknownKey(schema, key);
    case ValueErrorType.ObjectRequiredProperty:
      return `missing required key (expected ${expectedOf(schema)})`;
    case ValueErrorType.ObjectMinProperties: {
      const names = Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {});
      return names.length > 0
        ? `expected at least one of ${names.map((name) => `\`${name}\``).join(", ")}, got an empty mapping`
        : `expected ${expectedOf(schema)}, got an empty mapping`;
    }
    case ValueErrorType.ArrayMinItems:
      return `expected at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}, got ${describeValue(error.value)}`;
    default: {
      const message = `expected ${expectedOf(schema)}, got ${describeValue(error.value)}`;
      const choices = choicesOf(schema);
      const suggestion = choices && typeof error.value === "string" ? nearest(error.value, choices) : undefined;
      return suggestion ? `${message} (did you mean \`${suggestion}\`?)` : message;
    }
  }
}

/** Every schema error of `value`, the first one per key path. */
export function schemaProblems(schema: TSchema, value: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    const segments = segmentsOf(error.path, value);
    problems.push({ segments, message: messageOf(error, String(segments.at(-1) ?? "")) });
  }
  return problems;
}
