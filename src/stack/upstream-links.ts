/**
 * @module stack/upstream-links
 *
 * The stack without its proxy (`up --no-proxy`, nginx in front): what the
 * proxy would balance over, published as stable socket paths instead. Each
 * app's upstream has positions `0 .. instances-1`; position k is a symbolic
 * link (`<state_dir>/upstreams/hello.0.sock`, and `hello.0.uwsgi.sock` for
 * uwsgi_pass) to one balanced worker's own socket. nginx is configured once
 * with the positions (`tsgi-stack export nginx`) and reaches whichever
 * workers serve now:
 *
 * - a rolling reload starts each new worker beside the old one under a new
 *   slot number; when the old one leaves the membership the new one takes
 *   its position, the link replaced by rename (atomic: a connect finds the
 *   old worker or the new one, never nothing), and the old one drains the
 *   connections it has;
 * - a worker that fails the app's health check loses its position until a
 *   check passes again: the active checks the proxy would run, run here;
 * - positions are filled lowest first and kept compact; while fewer workers
 *   are balanced than the app's `instances` (one crashed, one failing its
 *   check, a scale below the config's count), the spare positions link to
 *   the balanced ones in turn, so that every position nginx lists reaches a
 *   worker; only an app with no balanced worker has no links;
 * - links a stack process that died left behind stay until this one places
 *   that app's workers (it adopts those still running), so nginx reaches
 *   the workers through a restart of the stack process; an app no longer in
 *   the config loses them then.
 *
 * Only unix-socket workers can be linked: a command app's port, or a worker
 * whose socket path was too long, has no position (the exporter says so).
 */
import { mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from "node:fs";
import path from "node:path";
import { type StatePaths, type UpstreamProtocol, upstreamLink, uwsgiSocketBeside } from "../contract/state-dir.ts";
import type { Endpoint } from "../proxy/balancing/selector.ts";
import { ActiveHealthChecker, type HealthCheckSpec } from "../proxy/health/active.ts";
import type { EndpointView } from "../proxy/upstreams.ts";

/** What the plan says of one worker app's upstream. */
export interface UpstreamApp {
  /** The config's `instances`: the positions nginx lists. */
  instances: number;
  health?: HealthCheckSpec;
}

/** A worker process's key: a slot reused by a new process is a new worker. */
const keyOf = (endpoint: Endpoint) => `${endpoint.id}#${endpoint.pid ?? 0}`;

/** A link's file name: app, position, and `.uwsgi` for the uwsgi one. */
const LINK_NAME = /^(.+)\.(\d+)(\.uwsgi)?\.sock$/;

interface AppUpstream {
  endpoints: Endpoint[];
  /** Position -> the key of the worker that owns it (undefined: a hole, filled by the next placement). */
  owners: (string | undefined)[];
  /** Position -> the HTTP socket its links point at now (as read from disk for links a previous stack left). */
  written: (string | undefined)[];
  checker?: ActiveHealthChecker;
  spec?: HealthCheckSpec;
  /** The supervisor has handed this app's workers over at least once: until then, links left behind stay as they are. */
  heard: boolean;
}

export class UpstreamLinks {
  private readonly apps = new Map<string, AppUpstream>();
  private planned: Readonly<Record<string, UpstreamApp>> = {};

  constructor(
    private readonly paths: StatePaths,
    /** Each module app's workers serve uwsgi beside HTTP (the supervisor launches them so): link both. */
    private readonly protocols: readonly UpstreamProtocol[],
    private readonly say: (line: string) => void,
  ) {
    mkdirSync(paths.upstreams, { recursive: true });
    for (const name of readdirSync(paths.upstreams)) {
      // A rename a dying stack process never finished.
      if (name.startsWith(".")) {
        rmSync(path.join(paths.upstreams, name), { force: true });
        continue;
      }
      const match = LINK_NAME.exec(name);
      if (!match || match[3]) continue;
      const upstream = this.upstream(match[1]!);
      try {
        upstream.written[Number(match[2])] = readlinkSync(path.join(paths.upstreams, name));
      } catch {
        rmSync(path.join(paths.upstreams, name), { force: true });
      }
    }
  }

  /**
   * The plan's worker apps (at start, and after each config reload): their
   * instances and health checks. A check whose spec did not change keeps
   * its verdicts; an app no longer planned loses its links.
   */
  configure(apps: Readonly<Record<string, UpstreamApp>>): void {
    this.planned = apps;
    for (const [app, upstream] of this.apps) {
      if (!apps[app]) {
        upstream.checker?.stop();
        upstream.endpoints = [];
        upstream.heard = true;
        this.place(app, upstream);
        this.apps.delete(app);
        continue;
      }
      this.settle(app, upstream);
    }
  }

  /** An app's ready workers, as the supervisor hands them over. */
  setEndpoints(app: string, endpoints: readonly Endpoint[]): void {
    const upstream = this.upstream(app);
    const kept = new Set(endpoints.map(keyOf));
    for (const gone of upstream.endpoints) if (!kept.has(keyOf(gone))) upstream.checker?.forget(keyOf(gone));
    upstream.endpoints = [...endpoints];
    upstream.heard = true;
    this.settle(app, upstream);
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

  stop(): void {
    for (const upstream of this.apps.values()) upstream.checker?.stop();
    rmSync(this.paths.upstreams, { recursive: true, force: true });
  }

  private upstream(app: string): AppUpstream {
    let upstream = this.apps.get(app);
    if (!upstream) {
      upstream = { endpoints: [], owners: [], written: [], heard: false };
      this.apps.set(app, upstream);
    }
    return upstream;
  }

  /** Places the app's workers, first starting its checks anew when the planned check is not the one running (a same check keeps its verdicts). */
  private settle(app: string, upstream: AppUpstream): void {
    if (JSON.stringify(this.planned[app]?.health) !== JSON.stringify(upstream.spec)) this.restartChecks(app, upstream);
    else this.place(app, upstream);
  }

  private restartChecks(app: string, upstream: AppUpstream): void {
    upstream.checker?.stop();
    upstream.checker = undefined;
    upstream.spec = this.planned[app]?.health;
    if (upstream.spec) {
      upstream.checker = new ActiveHealthChecker(app, upstream.spec, () => upstream.endpoints, keyOf, (_app, endpoint, healthy, reason) => {
        this.say(`${endpoint.id} (pid ${endpoint.pid}) ${healthy ? "passes its health check again" : `failed its health check: ${reason}`}`);
        this.place(app, upstream);
      });
      upstream.checker.start();
    }
    this.place(app, upstream);
  }

  /**
   * Gives each linkable, healthy worker a position and takes positions from
   * those that left: holes are filled first, then the owners past the count
   * of workers move down into the holes left, so that n workers own
   * positions 0 .. n-1; the positions from n up to `instances` link to them
   * in turn. A link changing target is one rename; a link is removed only
   * past the positions in use.
   */
  private place(app: string, upstream: AppUpstream): void {
    if (!upstream.heard) return;
    const eligible = upstream.endpoints.filter((endpoint) => endpoint.address.kind === "unix" && (upstream.checker?.isHealthy(endpoint) ?? true));
    const byKey = new Map(eligible.map((endpoint) => [keyOf(endpoint), endpoint]));
    const owners = upstream.owners.map((key) => (key !== undefined && byKey.has(key) ? key : undefined));
    const placed = new Set(owners.filter((key): key is string => key !== undefined));
    const hole = () => {
      const index = owners.indexOf(undefined);
      return index === -1 ? owners.length : index;
    };
    for (const key of eligible.map(keyOf)) if (!placed.has(key)) owners[hole()] = key;
    for (let last = owners.length - 1; last >= eligible.length; last--) {
      const key = owners[last];
      owners[last] = undefined;
      if (key !== undefined) owners[hole()] = key;
    }
    owners.length = eligible.length;
    upstream.owners = owners;

    const socketOf = (key: string) => (byKey.get(key)!.address as { path: string }).path;
    const count = owners.length === 0 ? 0 : Math.max(owners.length, this.planned[app]?.instances ?? 0);
    const wanted = Array.from({ length: count }, (_, position) => socketOf(owners[position % owners.length]!));
    for (let position = 0; position < Math.max(wanted.length, upstream.written.length); position++) {
      const target = wanted[position];
      if (target === upstream.written[position]) continue;
      for (const protocol of this.protocols) {
        const link = upstreamLink(this.paths, app, position, protocol);
        if (target === undefined) rmSync(link, { force: true });
        else this.link(link, protocol === "uwsgi" ? uwsgiSocketBeside(target) : target);
      }
    }
    upstream.written = wanted;
  }

  /** Points `link` at `target`, replacing what it pointed at in one step (a connect never finds it missing). */
  private link(link: string, target: string): void {
    const temporary = path.join(path.dirname(link), `.${path.basename(link)}.${process.pid}.new`);
    rmSync(temporary, { force: true });
    symlinkSync(target, temporary);
    renameSync(temporary, link);
  }
}
