/**
 * @module admin/page-assets
 *
 * The admin listener's status page: three static files in ./page (no build
 * step, nothing fetched from outside), found beside this module so that the
 * same code serves them from src/ under tsx and from dist/ once built (the
 * build copies src/admin/page to dist/admin/page). Read once, on first use:
 * they never change while the stack runs.
 */
import { readFileSync } from "node:fs";

export interface PageAsset {
  body: Buffer;
  contentType: string;
}

/** URL path -> file in ./page and its type. */
const FILES: Record<string, { file: string; contentType: string }> = {
  "/": { file: "index.html", contentType: "text/html; charset=utf-8" },
  "/page.js": { file: "page.js", contentType: "text/javascript; charset=utf-8" },
  "/page.css": { file: "page.css", contentType: "text/css; charset=utf-8" },
};

const cache = new Map<string, PageAsset>();

/**
 * The page's file for `urlPath` (`/`, `/page.js`, `/page.css`; a query string
 * is ignored), or undefined for any other path.
 */
export function pageAsset(urlPath: string): PageAsset | undefined {
  const pathname = urlPath.split("?", 1)[0]!;
  const entry = FILES[pathname];
  if (!entry) return undefined;
  let asset = cache.get(pathname);
  if (!asset) {
    asset = { body: readFileSync(new URL(`./page/${entry.file}`, import.meta.url)), contentType: entry.contentType };
    cache.set(pathname, asset);
  }
  return asset;
}
