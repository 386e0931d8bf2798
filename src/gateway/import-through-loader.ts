/**
 * @module gateway/import-through-loader
 *
 * An importer that gateway/typescript.ts loads only after tsx's hooks are
 * registered, so that tsx sees it as one of its own and gives the TypeScript
 * module it imports its full set of exports. Import nothing else from here.
 */
export const importModule = (url: string): Promise<Record<string, unknown>> => import(url);
