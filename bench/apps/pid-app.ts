/**
 * The fixture of bench/stack.mjs: a TSGI app that answers with the pid of the
 * worker process that served the request, so the benchmark can tell a
 * replacement worker from the one it killed.
 *
 *   npx tsgi-stack serve bench/apps/pid-app.ts --no-arbiter
 *   curl localhost:8000/   -> 12345
 */
import type { TsgiApp } from "tsgi-stack";

export const app: TsgiApp = (_environ, startResponse) => {
  startResponse("200 OK", [["Content-Type", "text/plain"]]);
  return [`${process.pid}\n`];
};
