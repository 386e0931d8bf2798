/**
 * @module export/errors
 *
 * Why an exporter or `startup` did not write what was asked: the EXPORT
 * group of the catalog (src/errors.ts, docs/errors.md).
 */
import { errorGroup, TsgiStackError } from "../errors.ts";

/** `startup` needs a systemd that runs here (PID 1), and the right to write its units. */
export class StartupUnavailable extends TsgiStackError {
  static readonly code = "TSGI_ERR_EXPORT_STARTUP_UNAVAILABLE";
}

/** The config asks for something the export's target has no equivalent for, and --force was not given. */
export class Inexpressible extends TsgiStackError {
  static readonly code = "TSGI_ERR_EXPORT_INEXPRESSIBLE";
}

export const exportErrors = errorGroup("EXPORT", [StartupUnavailable, Inexpressible]);
