/**
 * @module export/stack-upstreams
 *
 * Where nginx finds a stack's workers when the stack runs without its proxy
 * (`up --no-proxy`): each worker app's upstream is its `instances` positions
 * of the stack's upstream links (stack/upstream-links.ts keeps each one
 * pointing at a balanced worker). The NginxTarget `export nginx` renders
 * with; Compose has its own (its services' names).
 */
import type { StackConfig } from "../config/schema.ts";
import { statePaths, upstreamLink } from "../contract/state-dir.ts";
import { appKind } from "../stack/proxy-settings.ts";
import { MAX_SOCKET_PATH, socketPath } from "../supervisor/slots.ts";
import type { NginxProtocol, NginxTarget } from "./nginx.ts";

/** The unix socket paths are limited to 108 bytes: a link or worker socket longer than that cannot be connected to. */
const SUN_PATH = 107;

/**
 * nginx in front of `up --no-proxy`: each worker app's upstream is its
 * `instances` positions of the stack's upstream links. A command app's
 * workers listen on ports the stack picks at each start, which nginx cannot
 * follow; so do module workers whose socket path is too long for a socket.
 */
export function stackUpstreams(config: StackConfig, stackId: string, protocol: NginxProtocol, logDir: string): NginxTarget {
  const paths = statePaths(config.state_dir);
  return {
    protocol,
    name: stackId,
    accessLog: `${logDir.replace(/\/+$/, "")}/${stackId}.access.log`,
    upstream(app, linkProtocol) {
      const settings = config.apps[app]!;
      if (appKind(settings) === "command") {
        return { unreachable: "a command app listens on a port the stack picks at each start, which nginx cannot follow (give it a module, or keep the stack's own proxy)" };
      }
      const longest = [socketPath(paths, app, 9999), upstreamLink(paths, app, settings.instances, "uwsgi")];
      if (Buffer.byteLength(longest[0]!) > MAX_SOCKET_PATH || longest.some((file) => Buffer.byteLength(file) > SUN_PATH)) {
        return { unreachable: `the state dir's socket paths (${longest[1]}) are too long for unix sockets; set a shorter state_dir` };
      }
      // No passive marking (max_fails=0): a position is a link the stack moves to a live worker, so one failed
      // attempt (a kept-alive connection a draining worker closed) says nothing of the next; nginx retries elsewhere.
      const servers = Array.from({ length: settings.instances }, (_, position) => `unix:${upstreamLink(paths, app, position, linkProtocol)} max_fails=0`);
      return { servers };
    },
  };
}

