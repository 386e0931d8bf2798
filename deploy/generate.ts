/**
 * The generated files of deploy/: each one is what the real CLI (dist/, so
 * build first) writes for config.example.yaml. Regenerate all of them with
 *
 *   npm run deploy:generate
 *
 * (the build, then `node --import tsx deploy/generate.ts`).
 * test/deploy/drift.test.ts renders them the same way and fails when a
 * committed file differs.
 *
 * Portable paths. An exporter writes absolute paths (node's, the CLI's, the
 * config's and the state dir's; the stack id and the unit's name are a hash
 * of the config's path), so each row says where things will be on the
 * server the files are for (PORTABLE: node at /usr/bin/node, tsgi-stack
 * installed globally with `npm install -g`, the config and its apps in
 * /srv/tsgi) with the exporters' `--config-path`, `--node` and `--cli`.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "dist/cli/bin.js");

/** The command that regenerates every file below. */
export const REGENERATE = "npm run deploy:generate";

export interface Generated {
  /** The file, relative to the repository's root. */
  file: string;
  /** What `tsgi-stack` is run with (in the repository's root) to print it. */
  args: string[];
}

/** Where the generated files say things are: a server with tsgi-stack installed globally and the stack in /srv/tsgi. */
export const PORTABLE = {
  node: "/usr/bin/node",
  cli: "/usr/lib/node_modules/tsgi-stack/dist/cli/bin.js",
  config: "/srv/tsgi/config.example.yaml",
};

/** The stack's name (the Compose project, Kubernetes' part-of label), and the image `docker build -f deploy/Dockerfile -t tsgi-stack-example .` makes (deploy/README.md). */
const NAME = "tsgi-stack-example";
const IMAGE = `${NAME}:latest`;

const EXAMPLE = ["-c", "config.example.yaml", "--config-path", PORTABLE.config];

/** One row per generated file. */
export const GENERATED: Generated[] = [
  { file: "deploy/tsgi-stack.service", args: ["export", "systemd", ...EXAMPLE, "--user", "tsgi", "--node", PORTABLE.node, "--cli", PORTABLE.cli] },
  // The example's `legacy` app is a command app, which nginx cannot follow: --force leaves its routes out, and says so.
  { file: "deploy/nginx.conf", args: ["export", "nginx", ...EXAMPLE, "--force"] },
  // The image deploy/Dockerfile builds (the config in /app): --force, for what Kubernetes and Compose with nginx
  // cannot say of the example (its static folder, least_conn, header_timeout, max_memory; active health checks), listed at the top.
  { file: "deploy/k8s.yaml", args: ["export", "k8s", "-c", "config.example.yaml", "--name", NAME, "--image", IMAGE, "--force"] },
  { file: "deploy/compose.yaml", args: ["export", "compose", "-c", "config.example.yaml", "--name", NAME, "--image", IMAGE, "--force"] },
];

/**
 * What the CLI prints for a row now. Its environment is PATH, HOME and
 * NODE_ENV=production alone, so that none of the caller's variables
 * (TSGI_LISTEN, say, which config.example.yaml reads, or SUDO_USER) changes
 * the file.
 */
export function render(row: Generated): string {
  const result = spawnSync(process.execPath, [BIN, ...row.args], {
    cwd: ROOT,
    encoding: "utf8",
    // The files are for production: the example config's `NODE_ENV: ${NODE_ENV:-development}` is expanded at export.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", NODE_ENV: "production" },
    timeout: 60_000,
  });
  if (result.status !== 0) {
    throw new Error(`tsgi-stack ${row.args.join(" ")} exited ${result.status ?? result.signal} (is dist/ built? npm run build):\n${result.stderr}`);
  }
  return result.stdout;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  for (const row of GENERATED) {
    writeFileSync(path.join(ROOT, row.file), render(row));
    process.stdout.write(`wrote ${row.file} (tsgi-stack ${row.args.join(" ")})\n`);
  }
}
