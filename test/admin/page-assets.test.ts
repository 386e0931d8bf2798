/**
 * pageAsset (src/admin/page-assets.ts): the page's three files by URL path
 * with their types, nothing else; and the built copy (dist/, which `npm test`
 * builds first) serves the same bytes, so the build's copy step is not forgotten.
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pageAsset } from "../../src/admin/page-assets.ts";
import { ROOT } from "../helpers/serve.ts";

describe("pageAsset", () => {
  it("serves /, /page.js and /page.css with their types, a query string ignored", () => {
    const html = pageAsset("/")!;
    expect(html.contentType).toBe("text/html; charset=utf-8");
    expect(html.body.equals(readFileSync(path.join(ROOT, "src/admin/page/index.html")))).toBe(true);
    expect(pageAsset("/page.js")!.contentType).toBe("text/javascript; charset=utf-8");
    expect(pageAsset("/page.css?v=2")!.contentType).toBe("text/css; charset=utf-8");
  });

  it("knows no other path", () => {
    for (const other of ["/index.html", "/page-assets.ts", "/../page.js", "/status", "", "/page.js/"]) expect(pageAsset(other)).toBeUndefined();
  });

  it("serves the same files from dist once built", async () => {
    const built = (await import(path.join(ROOT, "dist/admin/page-assets.js"))) as typeof import("../../src/admin/page-assets.ts");
    for (const urlPath of ["/", "/page.js", "/page.css"]) {
      expect(built.pageAsset(urlPath)!.body.equals(pageAsset(urlPath)!.body), urlPath).toBe(true);
    }
  });
});
