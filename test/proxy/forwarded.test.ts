/**
 * The forwarding headers a worker gets (X-Forwarded-For/-Proto/-Host and RFC
 * 7239 Forwarded) and the trusted-proxy list behind them: a client that is
 * not a trusted proxy cannot put anything of its own in them, a trusted one
 * has its chain kept and its own address appended. Pure functions over plain
 * header objects, plus one real socket to pin down how node hands us a
 * header sent on several lines.
 */
import { afterEach, describe, expect, it } from "vitest";
import http from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import net from "node:net";
import { TrustedProxies, clientAddress, forwardingHeaders, parseForwarded, type ClientView } from "../../src/proxy/forwarded.ts";

const NOBODY = new TrustedProxies([]);
const LB = new TrustedProxies(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::ffff:172.16.0.0/108"]);

/** A request to app.example.com over http unless told otherwise (pass null for "no Host header"). */
const view = (peer: string, host: string | null = "app.example.com", scheme: "http" | "https" = "http"): ClientView => ({ peer, scheme, host: host ?? undefined });

/** Every header a client might use to lie about where it is. */
const SPOOFED: IncomingHttpHeaders = {
  "x-forwarded-for": "1.2.3.4, 5.6.7.8",
  "x-forwarded-proto": "https",
  "x-forwarded-host": "bank.example",
  forwarded: 'for=1.2.3.4;host=bank.example;proto=https, for="[::1]"',
};

describe("TrustedProxies", () => {
  it("is empty only when the list is", () => {
    expect(NOBODY.empty).toBe(true);
    expect(LB.empty).toBe(false);
  });

  type TrustCase = [peer: string, trusted: boolean, why: string];
  const CASES: TrustCase[] = [
    ["10.1.2.3", true, "IPv4 inside a CIDR block"],
    ["10.255.255.255", true, "last address of the block"],
    ["11.0.0.1", false, "IPv4 outside every block"],
    ["192.168.1.7", true, "a single IPv4 address"],
    ["192.168.1.8", false, "the address next to it"],
    ["2001:db8::1", true, "IPv6 inside a block"],
    ["2001:DB8:ffff::1", true, "IPv6 in upper case"],
    ["2001:db9::1", false, "IPv6 outside"],
    ["::ffff:10.9.8.7", true, "IPv4-mapped peer against an IPv4 block (dual-stack listener)"],
    ["::ffff:11.0.0.1", false, "IPv4-mapped peer outside"],
    ["172.16.5.5", true, "IPv4 peer against an IPv4-mapped block"],
    ["172.32.0.1", false, "IPv4 peer outside the mapped block"],
    ["2001:db8::1%eth0", true, "IPv6 with a zone id"],
    ["", false, "no address (socket already gone)"],
    ["not-an-ip", false, "garbage"],
    ["::1", false, "loopback is not trusted unless listed"],
  ];
  it.each(CASES)("%s -> %s (%s)", (peer, trusted) => {
    expect(LB.trusts(peer)).toBe(trusted);
  });

  it("trusts no one when empty, loopback included", () => {
    for (const peer of ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.1"]) expect(NOBODY.trusts(peer)).toBe(false);
  });

  it("takes /0 blocks, host bits after the prefix, and the full prefix lengths", () => {
    const all4 = new TrustedProxies(["0.0.0.0/0"]);
    expect(all4.trusts("203.0.113.9")).toBe(true);
    expect(all4.trusts("2001:db8::1")).toBe(false);
    const loose = new TrustedProxies(["10.1.2.3/8", "10.0.0.1/32", "::1/128"]);
    expect(loose.trusts("10.200.0.1")).toBe(true);
    expect(loose.trusts("::1")).toBe(true);
  });

  const BAD = ["10.0.0.0/33", "::/129", "10.0.0.0/", "/8", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0.0/1e1", "example.com", "1.2.3.4.5", "01.2.3.4", "", " 10.0.0.1", "2001:db8:::1"];
  it.each(BAD)("rejects %j, naming the entry and its index", (entry) => {
    const build = () => new TrustedProxies(["127.0.0.1", entry]);
    expect(build).toThrow(Error);
    expect(build).toThrow(`proxy.trusted_proxies[1]: ${JSON.stringify(entry)} is not an IP address or CIDR block`);
  });
});

describe("forwardingHeaders from a peer that is not trusted", () => {
  it("drops every spoofed value and sets ours (empty trust list)", () => {
    expect(forwardingHeaders(view("203.0.113.5"), SPOOFED, NOBODY)).toEqual([
      ["x-forwarded-for", "203.0.113.5"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "app.example.com"],
      ["forwarded", "for=203.0.113.5;host=app.example.com;proto=http"],
    ]);
  });

  it("drops them too when a trust list exists but does not name the peer", () => {
    expect(forwardingHeaders(view("203.0.113.5", "app.example.com", "https"), SPOOFED, LB)).toEqual([
      ["x-forwarded-for", "203.0.113.5"],
      ["x-forwarded-proto", "https"],
      ["x-forwarded-host", "app.example.com"],
      ["forwarded", "for=203.0.113.5;host=app.example.com;proto=https"],
    ]);
  });

  it("drops spoofed values sent on several lines (arrays) and in odd case", () => {
    const incoming: IncomingHttpHeaders = { "x-forwarded-for": ["1.1.1.1", "2.2.2.2"], forwarded: "for=1.1.1.1, for=2.2.2.2", "x-forwarded-proto": "HTTPS" };
    expect(forwardingHeaders(view("198.51.100.1"), incoming, LB)).toEqual(forwardingHeaders(view("198.51.100.1"), {}, LB));
  });

  it("leaves out X-Forwarded-Host and Forwarded's host when there is no Host header", () => {
    for (const host of [null, ""]) {
      expect(forwardingHeaders(view("203.0.113.5", host), SPOOFED, NOBODY)).toEqual([
        ["x-forwarded-for", "203.0.113.5"],
        ["x-forwarded-proto", "http"],
        ["forwarded", "for=203.0.113.5;proto=http"],
      ]);
    }
  });

  type AddressCase = [peer: string, xff: string, forwardedFor: string];
  const ADDRESSES: AddressCase[] = [
    ["2001:db8::1", "2001:db8::1", 'for="[2001:db8::1]"'],
    ["::1", "::1", 'for="[::1]"'],
    ["::ffff:127.0.0.1", "127.0.0.1", "for=127.0.0.1"],
    ["::FFFF:192.0.2.1", "192.0.2.1", "for=192.0.2.1"],
    ["fe80::1%eth0", "fe80::1", 'for="[fe80::1]"'],
    ["", "unknown", "for=unknown"],
  ];
  it.each(ADDRESSES)("shows peer %j as %j, Forwarded %s", (peer, xff, forwardedFor) => {
    const headers = new Map(forwardingHeaders(view(peer), {}, NOBODY));
    expect(headers.get("x-forwarded-for")).toBe(xff);
    expect(headers.get("forwarded")).toBe(`${forwardedFor};host=app.example.com;proto=http`);
  });

  type HostCase = [host: string, inForwarded: string];
  const HOSTS: HostCase[] = [
    ["example.com", "host=example.com"],
    ["example.com:8080", 'host="example.com:8080"'],
    ["[::1]:8080", 'host="[::1]:8080"'],
    ['we"ird\\host', 'host="we\\"ird\\\\host"'],
  ];
  it.each(HOSTS)("quotes host %j in Forwarded only when it must (%s)", (host, inForwarded) => {
    const headers = new Map(forwardingHeaders(view("192.0.2.1", host), {}, NOBODY));
    expect(headers.get("x-forwarded-host")).toBe(host);
    expect(headers.get("forwarded")).toBe(`for=192.0.2.1;${inForwarded};proto=http`);
    expect(parseForwarded(headers.get("forwarded")!)).toEqual([
      [
        ["for", "192.0.2.1"],
        ["host", host],
        ["proto", "http"],
      ],
    ]);
  });

  it("never reads the incoming headers at all", () => {
    const reads: PropertyKey[] = [];
    const spy = new Proxy(SPOOFED, {
      get(target, key, receiver) {
        reads.push(key);
        return Reflect.get(target, key, receiver);
      },
      has(target, key) {
        reads.push(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        reads.push("ownKeys");
        return Reflect.ownKeys(target);
      },
    });
    forwardingHeaders(view("203.0.113.5"), spy, NOBODY);
    forwardingHeaders(view("203.0.113.5"), spy, LB);
    expect(reads).toEqual([]);
  });

  it("gives the same answer, as fast, for a huge spoofed header (rough micro-check)", () => {
    const huge: IncomingHttpHeaders = {
      "x-forwarded-for": Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`).join(", "),
      forwarded: "for=1.2.3.4;".repeat(20_000),
    };
    const plain = forwardingHeaders(view("203.0.113.5"), {}, LB);
    expect(forwardingHeaders(view("203.0.113.5"), huge, LB)).toEqual(plain);
    const time = (incoming: IncomingHttpHeaders) => {
      const start = performance.now();
      for (let i = 0; i < 2_000; i++) forwardingHeaders(view("203.0.113.5"), incoming, LB);
      return performance.now() - start;
    };
    time({});
    time(huge);
    // Parsing a 300 kB header 2,000 times would take seconds; generous bound against noise.
    expect(time(huge)).toBeLessThan(time({}) * 5 + 50);
  });
});

describe("forwardingHeaders from a trusted peer", () => {
  it("keeps the chain and appends the peer", () => {
    const incoming: IncomingHttpHeaders = {
      "x-forwarded-for": "203.0.113.5, 198.51.100.9",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "shop.example.com",
      forwarded: 'for=203.0.113.5;proto=https;host=shop.example.com, for="[2001:db8::7]"',
    };
    expect(forwardingHeaders(view("10.0.0.2", "internal:8080"), incoming, LB)).toEqual([
      ["x-forwarded-for", "203.0.113.5, 198.51.100.9, 10.0.0.2"],
      ["x-forwarded-proto", "https"],
      ["x-forwarded-host", "shop.example.com"],
      ["forwarded", 'for=203.0.113.5;proto=https;host=shop.example.com, for="[2001:db8::7]", for=10.0.0.2;host="internal:8080";proto=http'],
    ]);
  });

  it("sets ours where the trusted peer sent nothing", () => {
    expect(forwardingHeaders(view("10.0.0.2", "app.example.com", "https"), {}, LB)).toEqual([
      ["x-forwarded-for", "10.0.0.2"],
      ["x-forwarded-proto", "https"],
      ["x-forwarded-host", "app.example.com"],
      ["forwarded", "for=10.0.0.2;host=app.example.com;proto=https"],
    ]);
  });

  it("joins an XFF sent on several lines (array form) with ', ', then the peer", () => {
    const headers = new Map(forwardingHeaders(view("10.0.0.2"), { "x-forwarded-for": ["203.0.113.5", "198.51.100.9"] }, LB));
    expect(headers.get("x-forwarded-for")).toBe("203.0.113.5, 198.51.100.9, 10.0.0.2");
  });

  it("treats an empty or blank XFF as absent", () => {
    for (const xff of ["", "   "]) {
      expect(new Map(forwardingHeaders(view("10.0.0.2"), { "x-forwarded-for": xff }, LB)).get("x-forwarded-for")).toBe("10.0.0.2");
    }
  });

  it("shows trusted IPv6 and IPv4-mapped peers the same way as untrusted ones", () => {
    const v6 = new Map(forwardingHeaders(view("2001:db8::9"), { "x-forwarded-for": "203.0.113.5", forwarded: "for=203.0.113.5" }, LB));
    expect(v6.get("x-forwarded-for")).toBe("203.0.113.5, 2001:db8::9");
    expect(v6.get("forwarded")).toBe('for=203.0.113.5, for="[2001:db8::9]";host=app.example.com;proto=http');
    const mapped = new Map(forwardingHeaders(view("::ffff:10.0.0.3"), { "x-forwarded-for": "203.0.113.5" }, LB));
    expect(mapped.get("x-forwarded-for")).toBe("203.0.113.5, 10.0.0.3");
    expect(mapped.get("forwarded")).toBe("for=10.0.0.3;host=app.example.com;proto=http");
  });

  type ProtoCase = [incoming: string | string[], expected: string];
  const PROTOS: ProtoCase[] = [
    ["https", "https"],
    ["http", "http"],
    ["HTTPS", "https"],
    [" https ", "https"],
    ["ftp", "http"],
    ["https, http", "http"],
    [["https", "https"], "http"],
    ["", "http"],
    ["javascript", "http"],
  ];
  it.each(PROTOS)("X-Forwarded-Proto %j -> %s (ours is http)", (proto, expected) => {
    expect(new Map(forwardingHeaders(view("10.0.0.2"), { "x-forwarded-proto": proto }, LB)).get("x-forwarded-proto")).toBe(expected);
  });

  type HostCase = [incoming: string, expected: string];
  const HOSTS: HostCase[] = [
    ["shop.example.com", "shop.example.com"],
    ["shop.example.com:8443", "shop.example.com:8443"],
    ["[2001:db8::1]:443", "[2001:db8::1]:443"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["a.example, b.example", "app.example.com"],
    ["a.example,b.example", "app.example.com"],
    ["evil.example/path", "app.example.com"],
    ["user@evil.example", "app.example.com"],
    ["shop.example.com:99999x", "app.example.com"],
    ["", "app.example.com"],
    ['"quoted"', "app.example.com"],
  ];
  it.each(HOSTS)("X-Forwarded-Host %j -> %s (ours is app.example.com)", (host, expected) => {
    expect(new Map(forwardingHeaders(view("10.0.0.2"), { "x-forwarded-host": host }, LB)).get("x-forwarded-host")).toBe(expected);
  });

  it("leaves X-Forwarded-Host out when neither the peer nor the request gives a well-formed host", () => {
    const names = forwardingHeaders(view("10.0.0.2", null), { "x-forwarded-host": "a, b" }, LB).map(([name]) => name);
    expect(names).toEqual(["x-forwarded-for", "x-forwarded-proto", "forwarded"]);
  });

  type ForwardedCase = [incoming: string, kept: string | undefined, why: string];
  const FORWARDED: ForwardedCase[] = [
    ["for=192.0.2.60;proto=http;by=203.0.113.43", "for=192.0.2.60;proto=http;by=203.0.113.43", "RFC 7239 example"],
    ['For="[2001:db8:cafe::17]:4711"', 'for="[2001:db8:cafe::17]:4711"', "parameter names lowercased, quoted IPv6 kept quoted"],
    ["for=192.0.2.43, for=198.51.100.17", "for=192.0.2.43, for=198.51.100.17", "two elements"],
    ['for="192.0.2.43"', "for=192.0.2.43", "needless quotes removed"],
    ['for=_hidden;by="_x y"', 'for=_hidden;by="_x y"', "obfuscated identifiers, space kept quoted"],
    ["for=192.0.2.43 ;  proto=https ,for=unknown", "for=192.0.2.43;proto=https, for=unknown", "whitespace around ; and , normalized"],
    ["for=192.0.2.43,,  ,for=unknown;", "for=192.0.2.43, for=unknown", "empty elements and pairs skipped"],
    ["", undefined, "empty header: just ours"],
    ["garbage", undefined, "no ="],
    ["for=1.2.3.4 proto=https", undefined, "missing separator"],
    ["for=[::1]", undefined, "unquoted IPv6 (brackets are not token characters)"],
    ['for="[::1]', undefined, "unterminated quoted-string"],
    ['for="a"b', undefined, "junk after a quoted-string"],
    ["for=1.2.3.4;for=5.6.7.8", undefined, "parameter repeated within an element"],
    ["for=1.2.3.4;FOR=5.6.7.8", undefined, "repeated, case-insensitively"],
    ["for =1.2.3.4", undefined, "space before ="],
    ["for=", undefined, "empty value"],
    ["=1.2.3.4", undefined, "empty name"],
    ['for="a\u0001b"', undefined, "control character in a quoted-string"],
  ];
  it.each(FORWARDED)("Forwarded %j -> kept as %j (%s)", (incoming, kept) => {
    const forwarded = new Map(forwardingHeaders(view("10.0.0.2"), { forwarded: incoming }, LB)).get("forwarded");
    const ours = "for=10.0.0.2;host=app.example.com;proto=http";
    expect(forwarded).toBe(kept === undefined ? ours : `${kept}, ${ours}`);
  });

  it("keeps escaped characters in a quoted-string, re-escaped", () => {
    const forwarded = new Map(forwardingHeaders(view("10.0.0.2"), { forwarded: 'by="a\\"b\\\\c\\d"' }, LB)).get("forwarded");
    expect(forwarded).toBe('by="a\\"b\\\\cd", for=10.0.0.2;host=app.example.com;proto=http');
    expect(parseForwarded(forwarded!)![0]).toEqual([["by", 'a"b\\cd']]);
  });
});

describe("a header sent on several lines, as node delivers it", () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it("reaches the trusted path joined with ', '", async () => {
    let result: [string, string][] | undefined;
    server = http.createServer((req, res) => {
      result = forwardingHeaders({ peer: req.socket.remoteAddress ?? "", scheme: "http", host: req.headers.host }, req.headers, new TrustedProxies(["127.0.0.1"]));
      res.end();
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    const raw = [
      "GET / HTTP/1.1",
      "Host: app.example.com",
      "X-Forwarded-For: 203.0.113.5",
      "Forwarded: for=203.0.113.5",
      "X-Forwarded-For: 198.51.100.9",
      "Forwarded: for=198.51.100.9",
      "Connection: close",
      "",
      "",
    ].join("\r\n");
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => socket.end(raw));
      socket.on("error", reject);
      socket.on("close", () => resolve());
      socket.resume();
    });
    expect(result).toEqual([
      ["x-forwarded-for", "203.0.113.5, 198.51.100.9, 127.0.0.1"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "app.example.com"],
      ["forwarded", "for=203.0.113.5, for=198.51.100.9, for=127.0.0.1;host=app.example.com;proto=http"],
    ]);
  });
});

describe("clientAddress: the client behind trusted proxies (nginx's realip, recursive)", () => {
  const trusted = new TrustedProxies(["10.0.0.0/8", "::1"]);
  it.each([
    ["an untrusted peer is the client, whatever it forwards", "203.0.113.9", "1.2.3.4", "203.0.113.9"],
    ["a trusted peer: the hop it forwarded for", "10.0.0.1", "198.51.100.7", "198.51.100.7"],
    ["trusted hops are skipped from the right", "10.0.0.1", "198.51.100.7, 10.0.0.2, 10.9.9.9", "198.51.100.7"],
    ["the first untrusted hop from the right wins, not the leftmost (which the client wrote)", "10.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"],
    ["every hop trusted: the leftmost", "10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"],
    ["a malformed hop stops the walk at the last good address", "10.0.0.1", "6.6.6.6, not-an-ip, 10.0.0.2", "10.0.0.2"],
    ["no header: the trusted peer itself", "10.0.0.1", undefined, "10.0.0.1"],
    ["IPv4-mapped IPv6 peers read as IPv4", "::ffff:203.0.113.9", undefined, "203.0.113.9"],
    ["an IPv6 hop behind a trusted IPv6 peer", "::1", "2001:db8::5", "2001:db8::5"],
  ] as [string, string, string | undefined, string][])("%s", (_what, peer, forwardedFor, expected) => {
    const headers: IncomingHttpHeaders = forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor };
    expect(clientAddress(peer, headers, trusted)).toBe(expected);
  });
});
