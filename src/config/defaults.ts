/**
 * @module config/defaults
 *
 * Provisioning: every key the file leaves out gets its
 * schema `default`, at every depth — an object whose default is `{}` is
 * created and then filled in, and each value of a map (each app) is filled in
 * as well. A default is applied only where the key is ABSENT — or empty
 * (`proxy:` with all its lines commented out) when the default is a list or a
 * mapping — and a value of the wrong type is left exactly as written, for the
 * validator to report. (An empty `timeout:` is an error, not 30s: there, an
 * empty value more likely means a value was forgotten.)
 *
 * Not TypeBox's Value.Default, on purpose: it merges a default into a value of
 * the wrong type (`routes: { path: /x }` becomes `[]` with a stray `path`
 * property, silently valid; `env: [a]` becomes `{ "0": "a" }`), and it skips
 * the values of a map whose schema has no default. The walk is this short.
 */
import { Kind } from "./typebox.ts";
import type { AnySchema } from "./schema.ts";

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** Returns `value` with defaults filled in; the input is not changed. */
export function applyDefaults(schema: AnySchema, value: unknown): unknown {
  const container = schema.default !== null && typeof schema.default === "object";
  const absent = value === undefined || (value === null && container);
  const filled = absent && "default" in schema ? structuredClone(schema.default) : value;
  switch (schema[Kind]) {
    case "Object": {
      if (!isPlainObject(filled)) return filled;
      const out: Record<string, unknown> = { ...filled };
      for (const [key, property] of Object.entries(schema.properties as Record<string, AnySchema>)) {
        const child = applyDefaults(property, out[key]);
        if (child !== undefined) out[key] = child;
      }
      return out;
    }
    case "Record": {
      if (!isPlainObject(filled)) return filled;
      const [valueSchema] = Object.values(schema.patternProperties as Record<string, AnySchema>);
      return Object.fromEntries(Object.entries(filled).map(([key, child]) => [key, applyDefaults(valueSchema!, child)]));
    }
    case "Array":
      return Array.isArray(filled) ? filled.map((item) => applyDefaults(schema.items as AnySchema, item)) : filled;
    default:
      return filled;
  }
}
