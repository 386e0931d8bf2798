/**
 * @module admin/errors
 *
 * Why the admin listener would not start: the ADMIN group of the catalog
 * (src/errors.ts, docs/errors.md).
 */
import { errorGroup, TsgiStackError } from "../errors.ts";

/** proxy.admin listens beyond loopback and no token guards it: the stack refuses to start rather than open reload/restart/scale to the network. */
export class AdminTokenRequired extends TsgiStackError {
  static readonly code = "TSGI_ERR_ADMIN_TOKEN_REQUIRED";

  constructor(readonly address: string) {
    super(
      `proxy.admin: ${address} is not a loopback address, and the admin listener can reload, restart and scale apps: ` +
        "set proxy.admin_token (16 characters or more), or TSGI_ADMIN_TOKEN in the stack's environment, or keep proxy.admin on 127.0.0.1",
      { at: "proxy.admin" },
    );
  }
}

export const adminErrors = errorGroup("ADMIN", [AdminTokenRequired]);
