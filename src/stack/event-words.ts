/**
 * @module stack/event-words
 *
 * What the supervisor's events say to people, in one place: `up` prints
 * these lines, the status' recent activity keeps them, and `up`'s summary
 * quotes an app's last exit with them — the same words wherever one reads
 * of the same worker.
 */
import type { SupervisorEvent } from "../supervisor/types.ts";

/** How a worker ended: `web.0 was killed by SIGKILL after 812 ms`, `web.1 exited with code 1 after 40 ms`. */
export function exitWords(event: Extract<SupervisorEvent, { type: "worker-exit" }>): string {
  return `${event.app}.${event.slot} ${event.signal ? `was killed by ${event.signal}` : `exited with code ${event.exitCode}`} after ${event.uptimeMs} ms`;
}

/** The line for an event, or undefined for those said elsewhere (a worker's readiness: `up` says it with its time) or not at all. */
export function eventWords(event: SupervisorEvent): string | undefined {
  switch (event.type) {
    case "worker-exit":
      return exitWords(event);
    case "worker-adopted":
      return `${event.app}.${event.slot} (pid ${event.pid}): left running by a stack process that died: taken over as it runs`;
    case "worker-not-ready":
      return `${event.app}.${event.slot} not ready after ${event.afterMs} ms`;
    case "worker-socket-lost":
      return `${event.app}.${event.slot} (pid ${event.pid}): its socket ${event.path} was removed: restarting it to bind a new one`;
    case "worker-unresponsive":
      return `${event.app}.${event.slot} (pid ${event.pid}): no heartbeat for ${event.silentMs} ms (stopped or stuck): out of balancing until it beats again`;
    case "worker-responsive":
      return `${event.app}.${event.slot} (pid ${event.pid}): beating again: back in balancing`;
    case "worker-blocked":
      return `${event.app}.${event.slot} (pid ${event.pid}): event loop blocked for ${event.silentMs} ms (timeout ${event.timeoutMs} ms): killed for replacement`;
    case "worker-not-restarted":
      return `${event.app}.${event.slot} is down and was not restarted: ${event.reason}; trying again in ${(event.retryInMs / 1000).toFixed(1)} s`;
    case "pool-errored":
      // The worker's stderr has been printed line by line as it came: the summary leaves it out.
      return `${event.app} halted: ${event.error.summary}`;
    case "reload-done":
      return `${event.app}: reloaded ${event.report.replaced} worker(s) in ${event.report.ms} ms`;
    case "reload-failed":
      return `${event.app}: reload failed, the running workers keep serving: ${event.report.error?.message ?? "no detail"}`;
    case "supervisor-error":
      return `supervisor: ${event.message}`;
    default:
      return undefined;
  }
}
