/**
 * @module contract/module-spec
 *
 * How a module app is named and called: `path/to/app.ts[:export]` and the
 * interface its export speaks. The config (`module:`, `interface:`), `serve`'s
 * argument and `--interface`, and the gateway's loader all read these, so
 * `validate` and `serve` agree on what a spec means and which file it names.
 */

/** What an export can be: a TSGI app, a Node `(req, res)` listener, or a Fetch handler. */
export type AppInterface = "tsgi" | "node" | "fetch";
/** An interface, or `auto` to tell it from the export itself. */
export type InterfaceChoice = AppInterface | "auto";
/** The names `interface:` and `serve --interface` accept, `auto` (the default) first. */
export const INTERFACES = ["auto", "tsgi", "node", "fetch"] as const satisfies readonly InterfaceChoice[];

/** What is tried after a module path, in order, to find its file (Node's own resolution, plus TypeScript). */
export const MODULE_EXTENSIONS = ["", ".ts", ".mts", ".js", ".mjs", "/index.ts", "/index.js"] as const;

const EXPORT_NAME = /^[A-Za-z_$][\w$]*$/;

/**
 * Splits `file.ts:name` into file and export; a bare `file.ts` has no export
 * name. Only an identifier after the last colon is an export, so `C:/x/app.ts`
 * is a path.
 */
export function parseModuleSpec(spec: string): { modulePath: string; exportName?: string } {
  const colon = spec.lastIndexOf(":");
  if (colon > 0) {
    const name = spec.slice(colon + 1);
    if (EXPORT_NAME.test(name)) return { modulePath: spec.slice(0, colon), exportName: name };
  }
  return { modulePath: spec };
}
