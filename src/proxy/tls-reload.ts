/**
 * @module proxy/tls-reload
 *
 * Renewed certificates without a restart. certbot and friends replace the
 * PEM files — by overwriting them, or by writing new files and swapping the
 * symlinks in `live/` — and an HTTPS listener must serve the new pair to new
 * connections while the open ones carry on with the old (TLS already agreed).
 *
 * `watchCertificate` polls the two paths with stat on an interval (2 s by
 * default) rather than fs.watch: inotify watches an inode, so a symlink swap
 * or a rename over the file goes unseen once the old inode is gone. stat
 * follows symlinks, so a swap shows as a new device/inode. A change is acted
 * on only once both files have looked the same for one whole interval, so a
 * certificate written before its key is not applied half-way. Then the pair
 * is read and checked (`loadCertificate`: both parse, the key matches the
 * certificate, OpenSSL takes them) and only then handed to every server's
 * setSecureContext. A pair that fails is reported once through onError and
 * the running context kept; the next change to either file is tried again —
 * so a key that arrives more than an interval after its certificate costs one
 * "does not match" report, then loads. A pair whose bytes equal those last
 * loaded (a `touch`) is not reloaded.
 *
 * setSecureContext replaces the whole context: a server built with more than
 * cert and key (ciphers, ca, ...) would lose them. listener.ts gives only
 * cert and key.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { promises as fsp, readFileSync, statSync, type Stats } from "node:fs";
import tls from "node:tls";

/** How often the files are looked at: a renewal is picked up within about two of these. */
export const DEFAULT_CERT_POLL_INTERVAL_MS = 2000;

/** A certificate/key pair that cannot be used; `file` is the one at fault. */
export class CertificateError extends Error {
  override name = "CertificateError";
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}

export interface CertificateFiles {
  /** PEM certificate chain, leaf first. */
  cert: string;
  /** PEM private key of the leaf certificate. */
  key: string;
}

export interface WatchOptions {
  /** Poll interval in ms (default 2000). */
  intervalMs?: number;
  /** Called after a new pair was applied to every server. */
  onReload?: () => void;
  /** Called once per changed pair that could not be used (default: a process warning). */
  onError?: (error: Error) => void;
}

/** Reads and checks a pair now (used at start and on SIGHUP); throws a CertificateError naming the file at fault. */
export function loadCertificate(files: CertificateFiles): { cert: Buffer; key: Buffer } {
  const cert = readPem(files.cert, "certificate");
  const key = readPem(files.key, "private key");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw new CertificateError(files.cert, `not a PEM certificate (${reason(error)})`, { cause: error });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new CertificateError(files.key, `not a usable PEM private key (${reason(error)})`, { cause: error });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new CertificateError(files.key, `the private key does not match the certificate in ${files.cert}`);
  }
  try {
    // What the server will do with them: catches a broken chain after the leaf, for one.
    tls.createSecureContext({ cert, key });
  } catch (error) {
    throw new CertificateError(files.cert, `OpenSSL refuses this certificate with the key ${files.key} (${reason(error)})`, { cause: error });
  }
  return { cert, key };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new CertificateError(file, `cannot read the ${what} (${reason(error)})`, { cause: error });
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Watches the PEM files and calls server.setSecureContext with the new pair
 * when they change and form a usable pair; a bad or half-written pair is
 * reported and the old context kept. Returns stop(): no callback runs and no
 * timer is left after it. The timer is unref'd: a forgotten watcher does not
 * keep the process alive.
 */
export function watchCertificate(servers: readonly tls.Server[], files: CertificateFiles, options: WatchOptions = {}): () => void {
  const intervalMs = options.intervalMs ?? DEFAULT_CERT_POLL_INTERVAL_MS;
  const onError = options.onError ?? ((error: Error) => process.emitWarning(error));
  // The state the servers were started from: what "changed" means.
  let tried = signatureNow(files);
  let seen = tried;
  let loaded = readQuietly(files);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const schedule = () => {
    timer = setTimeout(tick, intervalMs);
    timer.unref();
  };

  const tick = async () => {
    timer = undefined;
    const current = await signature(files);
    if (stopped) return;
    try {
      // Stable for one interval, and not what was last tried: try it.
      if (current === seen && current !== tried) {
        tried = current;
        apply();
      }
    } finally {
      seen = current;
      schedule();
    }
  };

  const apply = () => {
    let pair: { cert: Buffer; key: Buffer };
    try {
      pair = loadCertificate(files);
    } catch (error) {
      report(() => onError(error instanceof Error ? error : new Error(String(error))));
      return;
    }
    if (loaded && loaded.cert.equals(pair.cert) && loaded.key.equals(pair.key)) return;
    try {
      for (const server of servers) server.setSecureContext({ cert: pair.cert, key: pair.key });
    } catch (error) {
      // Not expected after loadCertificate's own createSecureContext; reported rather than thrown from a timer.
      report(() => onError(new CertificateError(files.cert, `could not be applied (${reason(error)})`, { cause: error })));
      return;
    }
    loaded = pair;
    if (options.onReload) report(options.onReload);
  };

  schedule();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
}

/** Runs a caller's callback; one that throws must not stop the watcher (or become an unhandled rejection). */
function report(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    process.emitWarning(error instanceof Error ? error : new Error(String(error)));
  }
}

/** What stat says of both files (through symlinks); a change in any part is a change. */
async function signature(files: CertificateFiles): Promise<string> {
  const [cert, key] = await Promise.all([fsp.stat(files.cert).then(describe, missing), fsp.stat(files.key).then(describe, missing)]);
  return `${cert}|${key}`;
}

function signatureNow(files: CertificateFiles): string {
  const one = (file: string) => {
    try {
      return describe(statSync(file));
    } catch (error) {
      return missing(error);
    }
  };
  return `${one(files.cert)}|${one(files.key)}`;
}

function describe(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

function missing(error: unknown): string {
  return `missing:${(error as NodeJS.ErrnoException).code ?? "?"}`;
}

/** The bytes the servers are presumably serving, to skip a reload to the same pair. */
function readQuietly(files: CertificateFiles): { cert: Buffer; key: Buffer } | undefined {
  try {
    return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
  } catch {
    return undefined;
  }
}
