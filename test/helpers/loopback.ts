/**
 * @module test/helpers/loopback
 *
 * The servers a test listens with on loopback (port 0, or a unix socket) and
 * every connection they accept, closed together when the test is over: the
 * connections are destroyed first, so that close() never waits on one kept
 * alive by a client or a proxy's pool.
 */
import type net from "node:net";

export class LoopbackServers {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();

  /** Listens on 127.0.0.1 on a free port, or on the unix socket `path`; resolves with the port (0 on a path). */
  async listen(server: net.Server, path?: string): Promise<number> {
    this.servers.push(server);
    server.on("connection", (socket: net.Socket) => this.track(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      if (path === undefined) server.listen(0, "127.0.0.1", () => resolve());
      else server.listen(path, () => resolve());
    });
    const address = server.address();
    return typeof address === "object" && address !== null ? address.port : 0;
  }

  /** A socket the test opened itself (a client's), destroyed with the servers' own. */
  track<T extends net.Socket>(socket: T): T {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    return socket;
  }

  /** Destroys every connection, then closes every server (one already closed is skipped). */
  async closeAll(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await Promise.all(this.servers.splice(0).map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
  }
}
