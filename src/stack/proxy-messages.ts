/**
 * @module stack/proxy-messages
 *
 * The IPC protocol between the stack process and its proxy processes
 * (stack/proxy-fleet.ts and stack/proxy-process.ts), as JSON over the
 * child_process channel. The listening sockets travel as handles beside
 * `listener` messages.
 *
 *   stack -> proxy: configure (first, and on every config reload), listener
 *                   (one per listening socket, after the first configure),
 *                   endpoints (an app's ready workers), stop (drain and exit)
 *   proxy -> stack: ready (every listener serves), say (a line for the terminal),
 *                   log-dropped (access log lines a failing disk lost since the last one, and why),
 *                   stats (every second: its metrics, the workers as it balances them, its recent errors)
 */
import type { Endpoint } from "../proxy/balancing/selector.ts";
import type { ProxySettings } from "./proxy-settings.ts";
import type { LogWriteError } from "./log-writes.ts";
import type { ErrorEntry, MetricsJson } from "../proxy/stats.ts";
import type { EndpointView } from "../proxy/upstreams.ts";

/** One listening socket: plain HTTP or HTTPS (with the settings' certificate). */
export interface ListenerSpec {
  tls: boolean;
  /** As bound, `host:port`: for messages. */
  address: string;
}

export type ToProxy =
  | { type: "configure"; settings: ProxySettings; listeners?: ListenerSpec[] }
  | { type: "listener"; index: number }
  | { type: "endpoints"; app: string; endpoints: Endpoint[] }
  | { type: "stop" };

/** One proxy process's report: its counters since it started, its view of the workers now, the errors since its last report. */
export interface ProxyReport {
  metrics: MetricsJson;
  upstreams: EndpointView[];
  errors: ErrorEntry[];
}

export type FromProxy =
  | { type: "ready" }
  | { type: "say"; line: string }
  | { type: "log-dropped"; lines: number; error: LogWriteError }
  | ({ type: "stats" } & ProxyReport);
