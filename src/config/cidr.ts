/**
 * @module config/cidr
 *
 * Reads an `address` or `address/prefix` entry (proxy.trusted_proxies): the
 * config checks use it to name a bad entry at load time, and the proxy
 * (proxy/forwarded.ts) to build its list, so both read entries alike.
 */
import net from "node:net";

export interface Cidr {
  address: string;
  family: 4 | 6;
  /** The prefix length; absent for a single address. */
  prefix?: number;
}

export function parseCidr(entry: string): Cidr | undefined {
  const slash = entry.indexOf("/");
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const family = net.isIP(address) as 0 | 4 | 6;
  if (family === 0) return undefined;
  if (slash === -1) return { address, family };
  const prefix = entry.slice(slash + 1);
  // Host bits after the prefix are allowed (as nginx's set_real_ip_from does, minus its warning).
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return undefined;
  return { address, family, prefix: Number(prefix) };
}
