/**
 * @module test/helpers/nginx
 *
 * A real nginx for a test (Debian's, which `npm test` installs when it is
 * missing): its config's shared part — one process in the foreground, its
 * pid file, error log and temporary folders in the test's own folder, never
 * the system's — and starting it on a free loopback port, on another one
 * when the port was taken between finding it and nginx binding it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { canConnect, freePort } from "./ports.ts";

export const NGINX = "/usr/sbin/nginx";

export interface RunningNginx {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

/** A whole nginx.conf: the shared part around `http`, the test's own http settings and servers. */
export function nginxConfig(dir: string, http: string, { errorLevel = "info", connections = 256 } = {}): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log ${errorLevel};
events { worker_connections ${connections}; }
http {
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
${http}
}
`;
}

/**
 * Writes `config(port)` to `dir`/nginx.conf and starts nginx on it, a free
 * port each attempt; resolves once the port answers. A port taken meanwhile
 * ("Address already in use") is tried again on another, up to `attempts`;
 * any other failure throws with nginx's error log. `onSpawn` hears of every
 * nginx started, for the caller's clean-up.
 */
export async function startNginx(
  dir: string,
  config: (port: number) => string,
  { attempts = 5, onSpawn }: { attempts?: number; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<RunningNginx> {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: this test needs a real nginx (apt-get install nginx-light). It does not skip.`);
  const errorLog = path.join(dir, "error.log");
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = await freePort();
    await writeFile(path.join(dir, "nginx.conf"), config(port));
    const child = spawn(NGINX, ["-p", `${dir}/`, "-c", path.join(dir, "nginx.conf"), "-e", errorLog], { stdio: "ignore" });
    onSpawn?.(child);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      if (await canConnect(port)) return { child, port, exited };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    const log = await readFile(errorLog, "utf8").catch(() => "");
    if (!log.includes("Address already in use")) throw new Error(`nginx did not listen on 127.0.0.1:${port}:\n${log}`);
  }
  throw new Error(`nginx could not get a free port in ${attempts} attempts`);
}
