/**
 * @module contract/state-dir
 *
 * The layout of a stack's state dir: where pm2's home, the workers' sockets,
 * logs and heartbeat files live. The supervisor makes and uses them; the
 * stack and the CLI read them (pm2's pid file, for a stack process that died)
 * without loading the supervisor.
 */
import path from "node:path";

export interface StatePaths {
  pm2Home: string;
  sockets: string;
  logs: string;
  /** The gateway workers' heartbeat files (supervisor/heartbeats.ts). */
  heartbeats: string;
  /**
   * Without the stack's proxy (`up --no-proxy`): one stable socket path per
   * balanced worker of each app, a link to that worker's socket, for a front
   * that cannot follow the workers' own (nginx: see upstreamLink).
   */
  upstreams: string;
}

export function statePaths(stateDir: string): StatePaths {
  const root = path.resolve(stateDir);
  return {
    pm2Home: path.join(root, "pm2"),
    sockets: path.join(root, "sockets"),
    logs: path.join(root, "logs"),
    heartbeats: path.join(root, "heartbeats"),
    upstreams: path.join(root, "upstreams"),
  };
}

/** The protocols a worker of a module app speaks on its sockets: HTTP always, uwsgi beside it without the stack's proxy. */
export type UpstreamProtocol = "http" | "uwsgi";

/**
 * A worker's uwsgi socket, beside its HTTP one (`hello.3.sock` ->
 * `hello.3.uwsgi.sock`): six bytes longer, still inside sun_path's 108 for
 * any HTTP socket path the supervisor gives a worker (at most 100).
 */
export function uwsgiSocketBeside(httpSocket: string): string {
  return httpSocket.replace(/(\.sock)?$/, ".uwsgi.sock");
}

/**
 * Position `position` of an app's upstream: a link kept pointing at one of
 * its balanced workers' sockets (`upstreams/hello.0.sock`,
 * `upstreams/hello.0.uwsgi.sock`). Workers come and go under new slot
 * numbers (a rolling reload starts each new one beside the old); the
 * positions stay `0 .. instances-1`, so a front configured once with these
 * paths reaches whichever workers serve now.
 */
export function upstreamLink(paths: StatePaths, app: string, position: number, protocol: UpstreamProtocol): string {
  return path.join(paths.upstreams, `${app}.${position}${protocol === "uwsgi" ? ".uwsgi" : ""}.sock`);
}
