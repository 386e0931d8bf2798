/**
 * relocate (export/relocate.ts): a config as if its file lived in another
 * folder — every path under the file's folder moved there (negated watch
 * globs included), paths outside it and plain values kept.
 */
import { describe, expect, it } from "vitest";
import type { StackConfig } from "../../src/config/schema.ts";
import { relocate } from "../../src/export/relocate.ts";

describe("relocate", () => {
  it("moves the paths under the config's folder and keeps the rest", () => {
    const config = {
      state_dir: "/home/me/shop/.tsgi",
      proxy: { tls: { cert: "/etc/ssl/shop.pem", key: "/home/me/shop/key.pem" } },
      apps: {
        web: { module: "/home/me/shop/app.ts", cwd: "/home/me/shop", watch: ["/home/me/shop/src/**", "!/home/me/shop/src/gen/**"], env: { NAME: "/home/me/shopping" }, instances: 2 },
      },
    } as unknown as StackConfig;
    expect(relocate(config, "/home/me/shop/tsgi.yaml", "/srv/shop/tsgi.yaml")).toEqual({
      state_dir: "/srv/shop/.tsgi",
      proxy: { tls: { cert: "/etc/ssl/shop.pem", key: "/srv/shop/key.pem" } },
      apps: {
        web: { module: "/srv/shop/app.ts", cwd: "/srv/shop", watch: ["/srv/shop/src/**", "!/srv/shop/src/gen/**"], env: { NAME: "/home/me/shopping" }, instances: 2 },
      },
    });
  });
});
