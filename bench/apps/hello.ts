/**
 * bench/boot.mjs's TypeScript TSGI app: the same code as bench/apps/hello.mjs,
 * typed, so that the only difference between the two workers' boots is the
 * TypeScript loader (tsx) the worker registers for a .ts app.
 *
 *   node dist/cli/bin.js serve bench/apps/hello.ts --no-arbiter --http 127.0.0.1:0
 */
import type { TsgiApp } from "tsgi-stack";

export const app: TsgiApp = (environ, startResponse) => {
  if (environ.PATH_INFO === "/healthz") {
    startResponse("200 OK", [["Content-Type", "text/plain"]]);
    return ["ok\n"];
  }
  startResponse("200 OK", [["Content-Type", "text/plain; charset=utf-8"]]);
  return [`Hello from TSGI: ${environ.REQUEST_METHOD} ${environ.SCRIPT_NAME}${environ.PATH_INFO}\n`];
};
