/**
 * A Hono app (a Fetch handler), unchanged, served by gateway workers:
 *   npx tsgi-stack serve examples/hono/app.ts
 * (Hono is a devDependency of tsgi-stack; in your project, `npm i hono`.)
 */
import { Hono } from "hono";

export const app = new Hono();

app.get("/", (c) => c.text("Hello from Hono behind TSGI\n"));
app.get("/json", (c) => c.json({ framework: "hono", path: c.req.path }));
app.get("/healthz", (c) => c.text("ok\n"));
