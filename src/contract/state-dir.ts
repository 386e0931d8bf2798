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
}

export function statePaths(stateDir: string): StatePaths {
  const root = path.resolve(stateDir);
  return {
    pm2Home: path.join(root, "pm2"),
    sockets: path.join(root, "sockets"),
    logs: path.join(root, "logs"),
    heartbeats: path.join(root, "heartbeats"),
  };
}
