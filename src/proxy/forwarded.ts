/**
 * @module proxy/forwarded
 *
 * The forwarding headers the front proxy gives a worker — X-Forwarded-For,
 * X-Forwarded-Proto, X-Forwarded-Host and RFC 7239 `Forwarded` — and the
 * trusted-proxy list (`proxy.trusted_proxies`) that decides whether a
 * client's own values are believed. What nginx users get from
 * `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` behind
 * `set_real_ip_from`:
 *
 * - From a peer that is NOT trusted (everyone, when the list is empty) every
 *   incoming X-Forwarded-* / Forwarded value is ignored — not even read — and
 *   replaced by ours: XFF = the peer, proto = our scheme, host = the Host
 *   header, Forwarded = `for=<peer>;host=<host>;proto=<scheme>`. A client
 *   cannot spoof its address, scheme or host this way.
 * - From a trusted peer (a load balancer in front of us) the chain is kept
 *   and the peer appended: XFF = the incoming value (node joins several
 *   header lines with ", ") then the peer; X-Forwarded-Proto / -Host = the
 *   incoming value when present and well-formed (proto is http or https, host
 *   is one host[:port], not a list), else ours; Forwarded = the incoming
 *   elements, then ours.
 * - An incoming Forwarded header that does not parse as RFC 7239 (or repeats
 *   a parameter within one element) is dropped whole, and only our element is
 *   sent: forwarding garbage would let each worker's parser decide what it
 *   means. Parsed elements are re-serialized, so what the worker gets is
 *   always well-formed.
 *
 * Addresses are shown as a worker expects them: an IPv4-mapped IPv6 peer
 * (`::ffff:10.0.0.1`, what a dual-stack listener reports) as IPv4, an IPv6
 * zone id (`%eth0`) left out, an IPv6 `for` quoted and bracketed
 * (`for="[2001:db8::1]"`), a peer that is not an address as `unknown`
 * (RFC 7239 section 6.2).
 *
 * The headers are built, not applied: the caller drops the incoming
 * x-forwarded-* and forwarded headers and sets these. Nothing here computes
 * the "real" client address (the rightmost untrusted XFF entry): that is the
 * app's business, with the same list.
 */
import type { IncomingHttpHeaders } from "node:http";
import net from "node:net";
import { parseCidr } from "../config/cidr.ts";
import { FIELD_VALUE, TCHAR, TOKEN } from "../contract/http-grammar.ts";

/** The peers whose forwarding headers are believed: `proxy.trusted_proxies`, compiled once. */
export class TrustedProxies {
  /** True when no one is trusted: the proxy's hot path skips every check. */
  readonly empty: boolean;
  readonly #list = new net.BlockList();

  /** Throws an Error naming the bad entry, e.g. `proxy.trusted_proxies[1]: "10.0.0.0/33" is not an IP address or CIDR block`. */
  constructor(entries: readonly string[]) {
    entries.forEach((entry, index) => {
      if (!addEntry(this.#list, entry)) {
        throw new Error(`proxy.trusted_proxies[${index}]: ${JSON.stringify(entry)} is not an IP address or CIDR block`);
      }
    });
    this.empty = entries.length === 0;
  }

  /** Whether `peer` (IPv4, IPv6 or IPv4-mapped IPv6, as node's socket.remoteAddress gives it) is trusted. */
  trusts(peer: string): boolean {
    if (this.empty) return false;
    const address = withoutZone(peer);
    // BlockList matches an IPv4-mapped IPv6 address against IPv4 rules, and the other way round.
    const family = net.isIP(address);
    if (family === 0) return false;
    return this.#list.check(address, family === 4 ? "ipv4" : "ipv6");
  }
}

/** Adds one `address` or `address/prefix` entry; false when it is neither. */
function addEntry(list: net.BlockList, entry: string): boolean {
  const cidr = parseCidr(entry);
  if (!cidr) return false;
  const type = cidr.family === 4 ? "ipv4" : "ipv6";
  if (cidr.prefix === undefined) list.addAddress(cidr.address, type);
  else list.addSubnet(cidr.address, cidr.prefix, type);
  return true;
}

/** What the proxy knows of the connection a request came on. */
export interface ClientView {
  /** The peer's address, as socket.remoteAddress gives it. */
  peer: string;
  /** The scheme of the listener the request came to. */
  scheme: "http" | "https";
  /** The request's Host header, if any. */
  host: string | undefined;
}

/**
 * The forwarding headers for the worker, as [lowercase name, value] pairs:
 * x-forwarded-for, x-forwarded-proto, x-forwarded-host (when a host is
 * known), forwarded. `incoming` is only read when the peer is trusted.
 */
export function forwardingHeaders(view: ClientView, incoming: IncomingHttpHeaders, trusted: TrustedProxies): [string, string][] {
  const peer = displayAddress(view.peer);
  const host = view.host || undefined;
  const ours = forwardedElement(peer, host, view.scheme);
  if (!trusted.trusts(view.peer)) {
    const headers: [string, string][] = [
      ["x-forwarded-for", peer],
      ["x-forwarded-proto", view.scheme],
    ];
    if (host !== undefined) headers.push(["x-forwarded-host", host]);
    headers.push(["forwarded", ours]);
    return headers;
  }

  const chain = joined(incoming["x-forwarded-for"])?.trim();
  const proto = wellFormedProto(joined(incoming["x-forwarded-proto"])) ?? view.scheme;
  const forwardedHost = wellFormedHost(joined(incoming["x-forwarded-host"])) ?? host;
  const earlier = normalizeForwarded(joined(incoming["forwarded"]));
  const headers: [string, string][] = [
    ["x-forwarded-for", chain ? `${chain}, ${peer}` : peer],
    ["x-forwarded-proto", proto],
  ];
  if (forwardedHost !== undefined) headers.push(["x-forwarded-host", forwardedHost]);
  headers.push(["forwarded", earlier ? `${earlier}, ${ours}` : ours]);
  return headers;
}

/**
 * The client's address for decisions about the client (ip_hash), as nginx's
 * realip module finds it with `set_real_ip_from` and `real_ip_recursive on`:
 * the peer itself, unless it is a trusted proxy — then X-Forwarded-For is
 * read from the right, past every trusted hop, and the first address that is
 * not trusted is the client. A malformed entry stops the walk at the last
 * good address (a client cannot smuggle an address past a broken one).
 */
export function clientAddress(peer: string, incoming: IncomingHttpHeaders, trusted: TrustedProxies): string {
  let client = peer;
  if (!trusted.trusts(client)) return displayAddress(client);
  const chain = joined(incoming["x-forwarded-for"]);
  if (!chain) return displayAddress(client);
  const hops = chain.split(",");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim();
    if (net.isIP(withoutZone(hop)) === 0) break;
    client = hop;
    if (!trusted.trusts(hop)) break;
  }
  return displayAddress(client);
}

/* ------------------------------------------------------------ addresses */

const MAPPED_PREFIX = "::ffff:";

function withoutZone(address: string): string {
  const percent = address.indexOf("%");
  return percent === -1 ? address : address.slice(0, percent);
}

/** The peer as shown to the worker: mapped IPv4 as IPv4, no zone id, "unknown" when it is not an address. */
function displayAddress(peer: string): string {
  if (net.isIPv4(peer)) return peer;
  const address = withoutZone(peer);
  if (!net.isIPv6(address)) return "unknown";
  if (address.length > MAPPED_PREFIX.length && address.slice(0, MAPPED_PREFIX.length).toLowerCase() === MAPPED_PREFIX) {
    const tail = address.slice(MAPPED_PREFIX.length);
    if (net.isIPv4(tail)) return tail;
  }
  return address;
}

/** What a quoted-string can carry (qdtext and quoted-pair): a Host header with anything else is left out of Forwarded. */
const QUOTABLE = FIELD_VALUE;

/** Our own Forwarded element, from a displayAddress() peer. */
function forwardedElement(peer: string, host: string | undefined, scheme: string): string {
  // An IPv6 node is bracketed, and quoted since ":" and "[" are not token characters (RFC 7239 section 6).
  const node = peer.includes(":") ? `"[${peer}]"` : peer;
  if (host === undefined || !QUOTABLE.test(host)) return `for=${node};proto=${scheme}`;
  return `for=${node};host=${forwardedValue(host)};proto=${scheme}`;
}

/* ---------------------------------------------------- incoming values */

/** node gives a header it saw on several lines as one string joined with ", " — or, for some, an array. */
function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

function wellFormedProto(value: string | undefined): "http" | "https" | undefined {
  if (value === undefined) return undefined;
  const proto = value.trim().toLowerCase();
  return proto === "http" || proto === "https" ? proto : undefined;
}

/**
 * One host[:port]: a name of letters, digits, "-", ".", "_", "~" and
 * %-escapes, or a bracketed IPv6 literal. Stricter than RFC 3986's reg-name
 * on purpose: no commas, so a list some proxies send is not taken for a host.
 */
const HOST = /^(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

function wellFormedHost(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const host = value.trim();
  return HOST.test(host) ? host : undefined;
}

/* ------------------------------------------------------------ RFC 7239 */

// A value that is a token (contract/http-grammar.ts) may go without quotes.

/** A Forwarded value: a token as is, anything else as a quoted-string. */
function forwardedValue(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/** A parsed Forwarded header: elements of [lowercase parameter, value] pairs. */
export type ForwardedElements = [string, string][][];

/**
 * Parses a Forwarded header (RFC 7239 section 4): a comma-separated list of
 * elements, each a ";"-separated list of token=value pairs, value a token or
 * quoted-string. Optional whitespace is accepted around "," and ";" (not
 * around "="); empty elements and pairs are skipped, as list syntax allows.
 * Returns undefined when the header does not parse or an element repeats a
 * parameter (section 4: "MUST NOT occur more than once per element").
 */
export function parseForwarded(header: string): ForwardedElements | undefined {
  const elements: ForwardedElements = [];
  let element: [string, string][] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  for (;;) {
    skipSpace();
    if (i < n && header[i] !== "," && header[i] !== ";") {
      // forwarded-pair = token "=" value
      const nameStart = i;
      while (i < n && TCHAR.test(header[i]!)) i++;
      if (i === nameStart || header[i] !== "=") return undefined;
      const name = header.slice(nameStart, i).toLowerCase();
      i++;
      let value: string;
      if (header[i] === '"') {
        i++;
        value = "";
        for (;;) {
          if (i >= n) return undefined;
          const c = header.charCodeAt(i);
          if (c === 0x22) break;
          if (c === 0x5c) {
            i++;
            if (i >= n || !isQuotedPairChar(header.charCodeAt(i))) return undefined;
          } else if (!isQdtext(c)) return undefined;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const valueStart = i;
        while (i < n && TCHAR.test(header[i]!)) i++;
        if (i === valueStart) return undefined;
        value = header.slice(valueStart, i);
      }
      if (element.some(([seen]) => seen === name)) return undefined;
      element.push([name, value]);
      skipSpace();
    }
    if (i >= n) break;
    if (header[i] === ",") {
      if (element.length > 0) elements.push(element);
      element = [];
    } else if (header[i] !== ";") return undefined;
    i++;
  }
  if (element.length > 0) elements.push(element);
  return elements;
}

/** qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
function isQdtext(c: number): boolean {
  return c === 0x09 || c === 0x20 || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/** quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
function isQuotedPairChar(c: number): boolean {
  return c === 0x09 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/** Writes parsed elements back as a well-formed header. */
export function serializeForwarded(elements: ForwardedElements): string {
  return elements.map((element) => element.map(([name, value]) => `${name}=${forwardedValue(value)}`).join(";")).join(", ");
}

/** The incoming Forwarded header re-serialized; undefined when absent, empty or unparsable (dropped). */
function normalizeForwarded(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const elements = parseForwarded(header);
  return elements && elements.length > 0 ? serializeForwarded(elements) : undefined;
}
