/**
 * @module stack/stack-id
 *
 * A stack's id, from its config file's path alone: what `up` names its pm2
 * processes by, and what `down` needs to find them when the stack process is
 * gone (so it lives apart from the stack, which the CLI does not load then).
 */
import { createHash } from "node:crypto";
import path from "node:path";

/** `<name>-<hash>`: readable in `pm2 ls` (as `tsgi:<stackId>:…`), unique per config file path. */
export function stackIdFor(configFile: string): string {
  const name = path.basename(configFile).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_");
  const hash = createHash("sha1").update(path.resolve(configFile)).digest("hex").slice(0, 8);
  return `${name}-${hash}`;
}
