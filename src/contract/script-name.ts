/**
 * @module contract/script-name
 *
 * The request header in which our front proxy tells a worker where a path
 * route mounts its app (the route's path becomes SCRIPT_NAME). The proxy sets
 * it (proxy/upstream/request-head.ts, replacing any copy a client sent), the
 * supervisor tells its workers to read it (`serve --script-name-header`), and
 * a worker trusts it only because nothing but the proxy reaches its socket.
 */
export const SCRIPT_NAME_HEADER = "x-tsgi-script-name";
