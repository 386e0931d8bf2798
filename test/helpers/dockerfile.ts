/**
 * @module test/helpers/dockerfile
 *
 * deploy/Dockerfile as the tests read it, without a Docker engine: its
 * instructions parsed (a small parser: comments, line continuations, flags,
 * JSON and shell forms) into stages, the runtime stage's environment and
 * HEALTHCHECK command, deploy/Dockerfile.dockerignore as a test of a path;
 * and a shell that runs a command as Docker's RUN and HEALTHCHECK do.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { ROOT } from "./serve.ts";


export interface Instruction {
  /** Upper case: FROM, RUN, COPY, … */
  keyword: string;
  /** Leading `--name=value` flags (`--from=build`, `--mount=…`, `--interval=15s`). */
  flags: Record<string, string>;
  /** What follows the keyword and its flags, continuation lines joined as Docker joins them. */
  args: string;
  /** The instruction's first line in the file. */
  line: number;
}

export interface Stage {
  base: string;
  name: string;
  instructions: Instruction[];
}

/**
 * Docker's reading of a Dockerfile, for the instructions this one uses: a
 * line ending in `\` continues on the next (the backslash dropped, the next
 * line's leading spaces kept); comment lines, also inside a continued
 * instruction, are dropped; empty lines too.
 */
export function parseDockerfile(text: string): Stage[] {
  const lines = text.split("\n");
  const stages: Stage[] = [];
  const blank = (line: string) => /^\s*(#.*)?$/.test(line);
  const continued = /\\[ \t]*$/;
  for (let i = 0; i < lines.length; ) {
    const start = i + 1;
    if (blank(lines[i]!)) {
      i++;
      continue;
    }
    let line = lines[i++]!.trimStart();
    while (continued.test(line)) {
      line = line.replace(continued, "");
      while (i < lines.length && blank(lines[i]!)) i++;
      if (i >= lines.length) break;
      line += lines[i++]!;
    }
    const match = /^(\S+)\s*([\s\S]*)$/.exec(line.trimEnd())!;
    const keyword = match[1]!.toUpperCase();
    let args = match[2]!;
    const flags: Record<string, string> = {};
    for (let flag = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(args); flag; flag = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(args)) {
      flags[flag[1]!] = flag[2] ?? "";
      args = args.slice(flag[0].length);
    }
    if (keyword === "FROM") {
      const [base, as, name] = args.split(/\s+/);
      stages.push({ base: base!, name: as?.toUpperCase() === "AS" ? name! : String(stages.length), instructions: [] });
    } else {
      expect(stages.length, `line ${start}: ${keyword} before FROM`).toBeGreaterThan(0);
      stages.at(-1)!.instructions.push({ keyword, flags, args, line: start });
    }
  }
  return stages;
}

/** A JSON-form argument (CMD ["a", "b"]) as its array; undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(args);
  return Array.isArray(parsed) && parsed.every((word) => typeof word === "string") ? parsed : undefined;
}

/** ENV's pairs: `ENV A=1 B="two"`, or the old `ENV A value`. */
export function envPairs(args: string): Record<string, string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const [name, ...value] = args.split(/\s+/);
    return { [name!]: value.join(" ") };
  }
  const pairs: Record<string, string> = {};
  for (const pair of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) pairs[pair[1]!] = pair[3] ?? pair[2]!;
  return pairs;
}

export const DOCKERFILE = path.join(ROOT, "deploy/Dockerfile");
export const stages = parseDockerfile(readFileSync(DOCKERFILE, "utf8"));
export const runtime = stages.at(-1)!;
export const of = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword);
export const runtimeEnv = Object.assign({}, ...of(runtime, "ENV").map((env) => envPairs(env.args))) as Record<string, string>;

/** The HEALTHCHECK's command, exactly as Docker hands it to `/bin/sh -c`. */
export const healthcheck = (() => {
  const found = of(runtime, "HEALTHCHECK");
  expect(found, "one HEALTHCHECK in the runtime stage").toHaveLength(1);
  const match = /^CMD\s+([\s\S]+)$/.exec(found[0]!.args);
  expect(match, `HEALTHCHECK ${found[0]!.args}: not HEALTHCHECK [flags] CMD …`).not.toBeNull();
  expect(execForm(match![1]!), "the HEALTHCHECK is in shell form (run with sh -c)").toBeUndefined();
  return match![1]!;
})();

/** deploy/Dockerfile.dockerignore as a test of a context path (relative, with /): Docker's patterns, as far as the file uses them. */
export const ignored = (() => {
  const patterns = readFileSync(path.join(ROOT, "deploy/Dockerfile.dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  expect(patterns.filter((pattern) => pattern.startsWith("!")), "no exceptions (this reading does not do them)").toEqual([]);
  const regexes = patterns.map(
    (pattern) =>
      new RegExp(
        `^${pattern
          .replace(/^\/+/, "")
          .replace(/[.+^${}()|[\]\\]/g, "\\$&")
          .replace(/\*\*\//g, "\u0000")
          .replace(/\*/g, "[^/]*")
          .replace(/\?/g, "[^/]")
          .replace(/\u0000/g, "(?:.*/)?")}$`,
      ),
  );
  // A path is out when it, or a folder above it, matches.
  return (rel: string) => {
    const parts = rel.split("/");
    return parts.some((_, n) => regexes.some((regex) => regex.test(parts.slice(0, n + 1).join("/"))));
  };
})();

/** A plain environment (none of an enclosing `npm test`'s npm_* variables): PATH, HOME and `extra`. */
export const plainEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? "/usr/bin:/bin"}`,
  HOME: os.homedir(),
  ...extra,
});

/**
 * A runner of shell commands as Docker's RUN and HEALTHCHECK do (`sh -c`),
 * each SIGKILLed by its pid after `timeoutMs`; every child is in `started`
 * while it runs, for the test's clean-up.
 */
export function shell(started: Set<ChildProcess>) {
  return async function sh(command: string, { cwd = ROOT, env, timeoutMs = 30_000 }: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number }) {
    const child = spawn("/bin/sh", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    started.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (data) => (stdout += data));
    child.stderr!.on("data", (data) => (stderr += data));
    const timer = setTimeout(() => {
      stderr += `\n[test: killed after ${timeoutMs} ms]`;
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
    }, timeoutMs);
    const [code] = (await once(child, "close")) as [number | null];
    clearTimeout(timer);
    started.delete(child);
    return { code, stdout, stderr };
  };
}

/** The HEALTHCHECK, run as Docker runs it, against the admin listener at `admin` (HOST:PORT, which the command reads from TSGI_ADMIN). */
export function healthcheckRunner(sh: ReturnType<typeof shell>) {
  return (admin: string) => sh(healthcheck, { env: plainEnv({ TSGI_ADMIN: admin }), timeoutMs: 15_000 });
}
