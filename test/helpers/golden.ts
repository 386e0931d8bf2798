/**
 * Golden files: what a test produces, kept in the repository and compared
 * byte for byte. After a deliberate change, rewrite them with
 *   UPDATE_GOLDEN=1 npx vitest run <the test file>
 * and read the diff before committing it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { expect } from "vitest";

const UPDATE = process.env.UPDATE_GOLDEN === "1";

/** The environment every config fixture is loaded with: nothing from the machine leaks in. */
export const FIXTURE_ENV = { FRONT_PORT: "9000", APP_FILE: "app.ts", GREETING: "hi there", EMPTY: "" };

/** `actual` must equal the golden file (written first, with UPDATE_GOLDEN=1). */
export function golden(file: string, actual: string): void {
  if (UPDATE) writeFileSync(file, actual);
  if (!existsSync(file)) expect.fail(`no golden file ${file}: write it with UPDATE_GOLDEN=1 and read it`);
  expect(actual).toBe(readFileSync(file, "utf8"));
}

/** Every occurrence of a machine's folder shown as `<dir>`, so a golden holds no machine's paths. */
export const hideDir = (text: string, dir: string) => text.split(dir).join("<dir>");

/** JSON with keys sorted, so the golden does not depend on the order the keys were filled in. */
export function stableJson(value: unknown): string {
  const sort = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(sort);
    if (node === null || typeof node !== "object") return node;
    return Object.fromEntries(Object.keys(node).sort().map((key) => [key, sort((node as Record<string, unknown>)[key])]));
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}
