/**
 * @module gateway/address
 *
 * Binding a listen address (contract/address.ts: the type, and how flags
 * write it): listen() as a Promise with the port the kernel gave, and the
 * clean-up of a unix socket file a dead process left behind.
 */
import { existsSync, unlinkSync } from "node:fs";
import net from "node:net";
import type { ListenAddress } from "../contract/address.ts";

/** The address a listening server actually got (the real port when 0 was asked for). */
function boundAddress(server: net.Server, asked: ListenAddress): ListenAddress {
  const bound = server.address();
  if (asked.kind === "unix" || bound === null || typeof bound === "string") return asked;
  return { kind: "tcp", host: asked.host, port: bound.port };
}

/**
 * Removes a unix socket file left behind by a process that died, so that
 * listen() does not fail with EADDRINUSE; a socket someone still answers on is
 * left alone (and listen() then reports the conflict).
 */
export async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const answered = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (!answered) unlinkSync(path);
}

/** listen() as a Promise that rejects with the real error (EADDRINUSE, EACCES). */
export function listen(server: net.Server, address: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    const onListening = () => {
      server.off("error", onError);
      resolve(boundAddress(server, address));
    };
    if (address.kind === "unix") server.listen(address.path, onListening);
    else server.listen(address.port, address.host, onListening);
  });
}
