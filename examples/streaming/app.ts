/**
 * A streaming TSGI app: the body is an async generator, sent chunk by chunk
 * (chunked encoding over HTTP/1.1) with back-pressure.
 *
 *   npx tsgi-stack serve examples/streaming/app.ts
 *   curl -N localhost:8000/       -> five lines, one every 200 ms
 *   curl localhost:8000/echo -d x -> the request body, streamed back
 */
import type { TsgiApp } from "tsgi-stack";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const app: TsgiApp = (environ, startResponse) => {
  if (environ.PATH_INFO === "/echo") {
    startResponse("200 OK", [["Content-Type", environ.CONTENT_TYPE ?? "application/octet-stream"]]);
    return environ["tsgi.input"];
  }
  startResponse("200 OK", [["Content-Type", "text/plain; charset=utf-8"]]);
  return (async function* () {
    for (let tick = 1; tick <= 5; tick++) {
      yield `tick ${tick}\n`;
      await sleep(200);
    }
  })();
};
