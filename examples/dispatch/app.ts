/**
 * The seeds' middleware chain: a URL Dispatcher mounting two apps, one of
 * them wrapped in the "Goodbye" post-processor.
 *
 *   npx tsgi-stack serve examples/dispatch/app.ts
 *   curl localhost:8000/hello/world    -> Hello, world! (SCRIPT_NAME=/hello)
 *   curl localhost:8000/goodbye/world  -> Goodbye, world! (the same app, rewritten)
 *   curl localhost:8000/elsewhere      -> 404
 */
import { dispatcher, goodbye, type TsgiApp } from "tsgi-stack";

const hello: TsgiApp = (environ, startResponse) => {
  const name = environ.PATH_INFO.slice(1) || "stranger";
  startResponse("200 OK", [["Content-Type", "text/plain; charset=utf-8"]]);
  return [`Hello, ${name}! (mounted at ${environ.SCRIPT_NAME})\n`];
};

export const app: TsgiApp = dispatcher({
  "/hello": hello,
  "/goodbye": goodbye(hello),
});
