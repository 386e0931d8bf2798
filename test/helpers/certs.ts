/**
 * Self-signed certificates for the TLS tests: a P-256 pair rather than RSA,
 * because openssl makes one instantly.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { X509Certificate } from "node:crypto";

export interface CertPair {
  /** The certificate file (PEM). */
  cert: string;
  /** The private key file (PEM). */
  key: string;
  /** Its SHA-256 fingerprint, to tell which certificate a server presented. */
  fingerprint: string;
}

/** `NAME.crt` and `NAME.key` in `dir`, for the subject CN=`name`, valid one day. */
export function selfSignedPair(dir: string, name: string): CertPair {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", `/CN=${name}`],
    { stdio: "ignore" },
  );
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}
