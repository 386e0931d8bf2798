/**
 * @module config/typebox
 *
 * TypeBox's runtime values, loaded through its CommonJS build. Its ESM build
 * is ~250 small files, each of which passes through the TypeScript loader's
 * hooks: measured, 0.8 s of every `up`, `status` and `validate`, against
 * 0.2 s this way. Types still come from `import type "@sinclair/typebox"`.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

const typebox = require("@sinclair/typebox") as typeof import("@sinclair/typebox");
const value = require("@sinclair/typebox/value") as typeof import("@sinclair/typebox/value");

export const { Type } = typebox;
// Declared on its own: destructuring would widen the `unique symbol` type TypeBox indexes schemas with.
export const Kind: typeof import("@sinclair/typebox").Kind = typebox.Kind;
export const Value: typeof import("@sinclair/typebox/value").Value = value.Value;
export const { ValueErrorType } = value;
