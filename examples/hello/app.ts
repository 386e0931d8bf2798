/** The smallest TSGI app: `npx tsgi-stack serve examples/hello/app.ts`. */
import type { TsgiApp } from "tsgi-stack";

export const app: TsgiApp = (environ, startResponse) => {
  if (environ.PATH_INFO === "/healthz") {
    startResponse("200 OK", [["Content-Type", "text/plain"]]);
    return ["ok\n"];
  }
  startResponse("200 OK", [["Content-Type", "text/plain; charset=utf-8"]]);
  return [`Hello from TSGI: ${environ.REQUEST_METHOD} ${environ.SCRIPT_NAME}${environ.PATH_INFO}\n`];
};
