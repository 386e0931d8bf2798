/**
 * @module config/typebox
 *
 * The parts of TypeBox the config uses, from one module. TypeBox ships as
 * ~250 small files (its ESM and CommonJS builds alike), and loading them was
 * most of what `validate` and `up` spent before reading a config: measured,
 * ~100 ms of a 300 ms `validate`. So the build (`npm run build`) replaces this
 * module's compiled output, dist/config/typebox.js, with esbuild's bundle of
 * it: the same exports in one file, ~15 ms to load. Types come from TypeBox's
 * own declarations either way.
 */
export { Kind, Type } from "@sinclair/typebox";
export { Value, ValueErrorType } from "@sinclair/typebox/value";
