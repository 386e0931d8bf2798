/**
 * @module gateway/typescript
 *
 * Loads a user's TypeScript app without a build step. Only a worker whose app
 * module is a TypeScript file pays for it: a .js/.mjs/.cjs app loads no loader
 * at all, and nor does any other process of the stack (our own code is
 * compiled JavaScript).
 *
 * The loader is tsx (esbuild underneath): it runs every TypeScript feature an
 * app may use (enums, decorators, parameter properties, `import x = require`),
 * resolves `./x.js` to `./x.ts` as tsc does, reads the app's tsconfig, and
 * maps stack traces back to the .ts lines. Node's own type stripping (22.6+)
 * does none of the first three and needs `.ts` in every import specifier, so
 * it cannot load the apps users write today.
 *
 * Both of tsx's hooks are registered: a .ts file outside any `"type": "module"`
 * package is CommonJS to Node, and Node's require(esm) rejects it without the
 * CommonJS hook. And the app is imported by a module loaded only after the
 * hooks are in place (./import-through-loader.ts): tsx gives a CommonJS .ts
 * file its named exports only when its importer came through tsx too, so an
 * import from a module loaded before the registration would see nothing but
 * `default`.
 */

/** Module files that need the loader (.tsx as well: tsx compiles JSX too). */
const TYPESCRIPT_FILE = /\.(?:[cm]?ts|tsx)$/i;

export const isTypeScriptFile = (file: string): boolean => TYPESCRIPT_FILE.test(file);

let importer: Promise<(url: string) => Promise<Record<string, unknown>>> | undefined;

/** Registers tsx's hooks in this process (once), then imports the TypeScript module at `url` through them. */
export async function importTypeScript(url: string): Promise<Record<string, unknown>> {
  importer ??= (async () => {
    const [cjs, esm] = await Promise.all([import("tsx/cjs/api"), import("tsx/esm/api")]);
    cjs.register();
    esm.register();
    return (await import("./import-through-loader.ts")).importModule;
  })();
  return (await importer)(url);
}
