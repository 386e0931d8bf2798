/**
 * bench/boot.mjs's JavaScript TSGI app: examples/hello/app.ts as plain
 * JavaScript, so that `tsgi-stack serve bench/apps/hello.mjs` loads no
 * TypeScript loader. Same body as examples/hello/app.ts (its TypeScript twin)
 * and bench/apps/node-hello.mjs (the bare node:http baseline).
 *
 *   node dist/cli/bin.js serve bench/apps/hello.mjs --no-arbiter --http 127.0.0.1:0
 */

/** @type {import("tsgi-stack").TsgiApp} */
export const app = (environ, startResponse) => {
  if (environ.PATH_INFO === "/healthz") {
    startResponse("200 OK", [["Content-Type", "text/plain"]]);
    return ["ok\n"];
  }
  startResponse("200 OK", [["Content-Type", "text/plain; charset=utf-8"]]);
  return [`Hello from TSGI: ${environ.REQUEST_METHOD} ${environ.SCRIPT_NAME}${environ.PATH_INFO}\n`];
};
