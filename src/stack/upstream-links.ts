/**
 * @module stack/upstream-links
 *
 * The stack without its proxy (`up --no-proxy`, nginx in front): what the
 * proxy would balance over, published as stable socket paths instead. Each
 * app's upstream has positions `0 .. n-1`, one per balanced worker; position
 * k is a symbolic link (`<state_dir>/upstreams/hello.0.sock`, and
 * `hello.0.uwsgi.sock` for uwsgi_pass) to one worker's own socket. nginx is
 * configured once with the positions (`tsgi-stack export nginx`) and
 * reaches whichever workers serve now:
 *
 * - a rolling reload starts each new worker beside the old one under a new
 *   slot number; when the old one leaves the membership the new one takes
 *   its position, the link replaced by rename (atomic: a connect finds the
 *   old worker or the new one, never nothing), and the old one drains the
 *   connections it has;
 * - a worker that fails the app's health check loses its position until a
 *   check passes again: the active checks the proxy would run, run here;
 * - positions are filled lowest first and kept compact, so the first
 *   `instances` positions are the ones in use whenever that many serve.
 *
 * Only unix-socket workers can be linked: a command app's port, or a worker
 * whose socket path was too long, has no position (the exporter says so).
 */
import { mkdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import path from "node:path";
import { type StatePaths, type UpstreamProtocol, upstreamLink, uwsgiSocketBeside } from "../contract/state-dir.ts";
import type { Endpoint } from "../proxy/balancing/selector.ts";
import { ActiveHealthChecker, type HealthCheckSpec } from "../proxy/health/active.ts";
import type { EndpointView } from "../proxy/upstreams.ts";

/** A worker process's key: a slot reused by a new process is a new worker. */
const keyOf = (endpoint: Endpoint) => `${endpoint.id}#${endpoint.pid ?? 0}`;

interface AppUpstream {
  endpoints: Endpoint[];
  /** Position -> the key of the worker linked there (undefined: a hole, filled by the next placement). */
  positions: (string | undefined)[];
  checker?: ActiveHealthChecker;
}

export class UpstreamLinks {
  private readonly apps = new Map<string, AppUpstream>();
  private health: Readonly<Record<string, HealthCheckSpec>> = {};

  constructor(
    private readonly paths: StatePaths,
    /** Each module app's workers serve uwsgi beside HTTP (the supervisor launches them so): link both. */
    private readonly protocols: readonly UpstreamProtocol[],
    private readonly say: (line: string) => void,
  ) {
    // Links left by a stack that died point at sockets that are gone: start from none.
    rmSync(paths.upstreams, { recursive: true, force: true });
    mkdirSync(paths.upstreams, { recursive: true });
  }

  /** The apps' health checks (at start, and on each config reload). */
  configure(health: Readonly<Record<string, HealthCheckSpec>> = {}): void {
    this.health = health;
    for (const [app, upstream] of this.apps) this.restartChecks(app, upstream);
  }

  /** An app's ready workers, as the supervisor hands them over. */
  setEndpoints(app: string, endpoints: readonly Endpoint[]): void {
    const upstream = this.apps.get(app) ?? { endpoints: [], positions: [] };
    const kept = new Set(endpoints.map(keyOf));
    for (const gone of upstream.endpoints) if (!kept.has(keyOf(gone))) upstream.checker?.forget(keyOf(gone));
    upstream.endpoints = [...endpoints];
    if (!this.apps.has(app)) {
      this.apps.set(app, upstream);
      this.restartChecks(app, upstream);
    }
    this.place(app, upstream);
  }

  /** What `status` joins to each worker: its health check, and why it has no position. */
  views(): EndpointView[] {
    const views: EndpointView[] = [];
    for (const [app, upstream] of this.apps) {
      for (const endpoint of upstream.endpoints) {
        const key = keyOf(endpoint);
        const result = upstream.checker?.lastResult(key);
        const health = !result ? "unchecked" : upstream.checker!.isHealthy(endpoint) ? "passing" : "failing";
        const outReason = health === "failing" ? (result?.failure ?? "failed its health check") : endpoint.address.kind === "tcp" ? "listens on a port: no upstream link" : undefined;
        views.push({
          app,
          id: endpoint.id,
          ...(endpoint.pid === undefined ? {} : { pid: endpoint.pid }),
          inFlight: 0,
          health,
          ...(result ? { checkedAt: result.at } : {}),
          ...(outReason ? { outReason } : {}),
        });
      }
    }
    return views;
  }

  /** The link paths of an app's positions in use now (for `up`'s line, and the tests). */
  linked(app: string): string[] {
    const positions = this.apps.get(app)?.positions ?? [];
    return positions.flatMap((key, position) => (key === undefined ? [] : [upstreamLink(this.paths, app, position, "http")]));
  }

  stop(): void {
    for (const upstream of this.apps.values()) upstream.checker?.stop();
    rmSync(this.paths.upstreams, { recursive: true, force: true });
  }

  private restartChecks(app: string, upstream: AppUpstream): void {
    upstream.checker?.stop();
    upstream.checker = undefined;
    const spec = this.health[app];
    if (!spec) return this.place(app, upstream);
    upstream.checker = new ActiveHealthChecker(app, spec, () => upstream.endpoints, keyOf, (_app, endpoint, healthy, reason) => {
      this.say(`${endpoint.id} (pid ${endpoint.pid}) ${healthy ? "passes its health check again" : `failed its health check: ${reason}`}`);
      this.place(app, upstream);
    });
    upstream.checker.start();
    this.place(app, upstream);
  }

  /**
   * Gives each linkable, healthy worker a position and takes positions from
   * those that left: holes are filled first, then the positions past the
   * count of workers are moved down into the holes left, so that n workers
   * always hold positions 0 .. n-1. A position changing hands is one rename.
   */
  private place(app: string, upstream: AppUpstream): void {
    const eligible = upstream.endpoints.filter((endpoint) => endpoint.address.kind === "unix" && (upstream.checker?.isHealthy(endpoint) ?? true));
    const byKey = new Map(eligible.map((endpoint) => [keyOf(endpoint), endpoint]));
    const before = [...upstream.positions];
    const positions = before.map((key) => (key !== undefined && byKey.has(key) ? key : undefined));
    const placed = new Set(positions.filter((key): key is string => key !== undefined));
    const waiting = eligible.map(keyOf).filter((key) => !placed.has(key));
    const hole = () => {
      const index = positions.indexOf(undefined);
      return index === -1 ? positions.length : index;
    };
    for (const key of waiting) positions[hole()] = key;
    // Compact: a worker past the count moves into the lowest hole.
    for (let last = positions.length - 1; last >= eligible.length; last--) {
      const key = positions[last];
      positions[last] = undefined;
      if (key !== undefined) positions[hole()] = key;
    }
    positions.length = eligible.length;
    for (let position = 0; position < Math.max(before.length, positions.length); position++) {
      const key = positions[position];
      if (key === before[position]) continue;
      for (const protocol of this.protocols) {
        const link = upstreamLink(this.paths, app, position, protocol);
        const endpoint = key === undefined ? undefined : byKey.get(key);
        if (!endpoint || endpoint.address.kind !== "unix") rmSync(link, { force: true });
        else this.link(link, protocol === "uwsgi" ? uwsgiSocketBeside(endpoint.address.path) : endpoint.address.path);
      }
    }
    upstream.positions = positions;
  }

  /** Points `link` at `target`, replacing what it pointed at in one step (a connect never finds it missing). */
  private link(link: string, target: string): void {
    const temporary = path.join(path.dirname(link), `.${path.basename(link)}.${process.pid}.new`);
    rmSync(temporary, { force: true });
    symlinkSync(target, temporary);
    renameSync(temporary, link);
  }
}
