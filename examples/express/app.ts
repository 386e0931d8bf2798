/**
 * An Express app, unchanged, served by gateway workers:
 *   npx tsgi-stack serve examples/express/app.ts
 * (Express is a devDependency of tsgi-stack; in your project, `npm i express`.)
 */
import express from "express";

export const app = express();
app.use(express.json());

app.get("/", (_req, res) => {
  res.type("text/plain").send("Hello from Express behind TSGI\n");
});

app.post("/echo", (req, res) => {
  res.json({ received: req.body });
});

app.get("/healthz", (_req, res) => {
  res.send("ok\n");
});
