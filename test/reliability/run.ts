/**
 * `npm run reliability`: the whole reliability matrix at its full bounds, and
 * the table that says how it went.
 *
 *   1. builds (the tests spawn the built CLI);
 *   2. runs vitest twice, with RELIABILITY_LONG=1 (full bounds),
 *      RELIABILITY_REPORT (where record() appends its rows) and the fuzzers' sizes (FUZZ_RUNS=20000, FUZZ_LISTENER_RUNS=100000, FUZZ_DIFF_RUNS=5000)
 *      (for the fuzzers): first every other file the matrix references and
 *      test/fuzz/ when it exists, files in parallel; then test/reliability/,
 *      one file at a time — those measure latency and reload times under load,
 *      and two of them at once on 2 cores would measure each other;
 *   3. prints one table — id | what was done | figure | pass/fail — covering
 *      every matrix row, plus any row a test recorded under an id of its own;
 *   4. writes it as JSON (bench/results/reliability-<date>.json, or --out FILE)
 *      and, with --readme, into README.md between the reliability markers.
 *
 * A row passes when every test it names ran and passed and nothing it recorded
 * says otherwise. Each failure is printed with what went wrong and the command
 * that reruns it. Exit status: 0 when every row passed.
 *
 * Usage: npm run reliability [-- --out FILE] [-- --readme]
 *        npm run reliability -- --from FILE [--readme]   (an earlier run's JSON: its table, nothing run)
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MATRIX, type MatrixRow, type TestRef } from "./matrix.ts";
import type { ReliabilityRow } from "./record.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The whole run's budget: the matrix promises under 15 minutes on 2 cores. */
const BUDGET_MS = 15 * 60_000;
const README_START = "<!-- reliability:start -->";
const README_END = "<!-- reliability:end -->";

interface Assertion {
  fullName: string;
  status: string;
  failureMessages: string[];
}
interface FileResult {
  file: string;
  assertions: Assertion[];
  /** A file that failed as a whole (it did not load, a hook failed): vitest's message. */
  message?: string;
}

export interface TableRow extends ReliabilityRow {
  /** How the row was shown: "here" (a test of this suite) or the referenced tests. */
  tests: string[];
  /** What went wrong and how to rerun it, for a failed row. */
  failure?: string;
}

function args(): { out?: string; from?: string; readme: boolean } {
  const argv = process.argv.slice(2);
  const value = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  return { out: value("--out"), from: value("--from"), readme: argv.includes("--readme") };
}

/** Every *.test.ts under `dir` (relative to the repo), sorted; none when it does not exist. */
function testFilesUnder(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  const found: string[] = [];
  for (const name of readdirSync(abs)) {
    const rel = path.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) found.push(...testFilesUnder(rel));
    else if (name.endsWith(".test.ts")) found.push(rel);
  }
  return found.sort();
}

function filesOf(ref: TestRef): string[] {
  return ref.dir ? testFilesUnder(ref.dir) : [ref.file!];
}

/** `text` as a regular expression that matches itself only. */
const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

interface VitestRun {
  files: string[];
  jsonFile: string;
  /** One file at a time, not in parallel. */
  sequential?: boolean;
  /** Only the tests whose full name matches (vitest -t). */
  filter?: string;
}

/** The vitest command line of `run`, with the reporters this script reads. */
function vitestArgs({ files, jsonFile, sequential, filter }: VitestRun): string[] {
  const order = sequential ? ["--no-file-parallelism"] : [];
  const only = filter ? ["-t", filter] : [];
  return ["vitest", "run", ...order, ...only, "--testTimeout=600000", "--hookTimeout=30000", "--reporter=default", "--reporter=json", `--outputFile=${jsonFile}`, ...files];
}

/** Runs vitest; it is stopped when the whole run's budget (counted from `begun`) is spent. */
function runVitest(run: VitestRun, env: NodeJS.ProcessEnv, begun: number): Promise<number | null> {
  if (run.files.length === 0) return Promise.resolve(0);
  return new Promise((resolve) => {
    const child = spawn("npx", vitestArgs(run), { cwd: ROOT, env, stdio: "inherit" });
    // The hard stop of the whole run: a hang must not hold CI.
    const timer = setTimeout(() => {
      console.error(`reliability: still running after ${BUDGET_MS / 60_000} min: stopping vitest (pid ${child.pid})`);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
    }, Math.max(0, begun + BUDGET_MS - Date.now()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function readResults(jsonFile: string): Map<string, FileResult> {
  const results = new Map<string, FileResult>();
  if (!existsSync(jsonFile)) return results;
  const report = JSON.parse(readFileSync(jsonFile, "utf8"));
  for (const file of report.testResults ?? []) {
    const rel = path.relative(ROOT, file.name);
    results.set(rel, {
      file: rel,
      assertions: (file.assertionResults ?? []).map((a: any) => ({ fullName: a.fullName, status: a.status, failureMessages: a.failureMessages ?? [] })),
      message: file.status === "failed" && file.message ? file.message : undefined,
    });
  }
  return results;
}

function readRecords(reportFile: string): (ReliabilityRow & { file?: string; test?: string })[] {
  if (!existsSync(reportFile)) return [];
  return readFileSync(reportFile, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

const firstLine = (text: string) => text.split("\n").find((line) => line.trim() !== "")?.trim() ?? text;

/** The command that runs `file` (and only the test `name`, when given) as this run did. */
function rerun(file: string, name?: string): string {
  // -t takes a regular expression: the name is escaped to match itself only.
  const filter = name ? ` -t '${escapeRegex(name).replace(/'/g, "'\\''")}'` : "";
  return `npm run build && RELIABILITY_LONG=1 FUZZ_RUNS=20000 FUZZ_LISTENER_RUNS=100000 FUZZ_DIFF_RUNS=5000 npx vitest run ${file}${filter} --testTimeout=600000 --hookTimeout=30000`;
}

/** One matrix row: its tests' verdicts and its recorded figures, made into a table row. */
function judge(row: MatrixRow, results: Map<string, FileResult>, records: ReturnType<typeof readRecords>): TableRow {
  const problems: string[] = [];
  const shown: string[] = [];
  let passedTests = 0;
  for (const ref of row.tests) {
    const files = filesOf(ref);
    if (files.length === 0) problems.push(`no test: ${ref.dir ?? ref.file} does not exist on this branch`);
    for (const file of files) {
      shown.push(ref.name ? `${file} › ${ref.name}` : file);
      const result = results.get(file);
      if (!result) {
        problems.push(`${file} did not run (see the vitest output above); rerun: ${rerun(file, ref.name)}`);
        continue;
      }
      if (result.message) problems.push(`${file} failed to run: ${firstLine(result.message)}; rerun: ${rerun(file)}`);
      const matched = result.assertions.filter((a) => !ref.name || a.fullName.includes(ref.name));
      if (matched.length === 0 && !result.message) problems.push(`${file}: no test named "${ref.name}"`);
      for (const a of matched) {
        if (a.status === "passed") passedTests++;
        else problems.push(`${a.fullName} ${a.status}: ${firstLine(a.failureMessages.join("\n") || "(no message)")}; rerun: ${rerun(file, a.fullName)}`);
      }
    }
  }
  const own = records.filter((r) => r.id === row.id);
  for (const r of own) if (!r.pass) problems.push(`recorded a miss: ${r.figure}${r.file ? `; rerun: ${rerun(r.file, r.test)}` : ""}`);
  const figure =
    own.length > 0 ? own.map((r) => r.figure).join("; ") : passedTests > 0 ? `${passedTests} test${passedTests === 1 ? "" : "s"} passed` : "not run";
  const done = own.length > 0 ? [...new Set(own.map((r) => r.done))].join("; ") : row.title;
  return { id: row.id, done, figure, pass: problems.length === 0, tests: shown, failure: problems.length ? problems.join("\n    ") : undefined };
}

function markdownTable(rows: TableRow[]): string {
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  return [
    "| id | what was done | figure | result |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.id} | ${cell(r.done)} | ${cell(r.figure)} | ${r.pass ? "pass" : "**FAIL**"} |`),
  ].join("\n");
}

function gitCommit(): string {
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim();
  const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, encoding: "utf8" }).stdout.trim() !== "";
  return `${head || "unknown"}${dirty ? " (with uncommitted changes)" : ""}`;
}

/** README's reliability section, between its markers, rewritten with this table. */
function writeReadme(date: string, commit: string, elapsedMs: number, cores: number, table: string): void {
  const readmeFile = path.join(ROOT, "README.md");
  const readme = readFileSync(readmeFile, "utf8");
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${README_START} ... ${README_END} section to write the table into`);
  const section = `${README_START}\nLatest run: ${date}, commit ${commit}, ${(elapsedMs / 60_000).toFixed(1)} min on ${cores} cores.\n\n${table}\n${README_END}`;
  writeFileSync(readmeFile, readme.slice(0, start) + section + readme.slice(end + README_END.length));
  console.log("reliability: README.md's table updated");
}

/** `--from FILE`: the table of an earlier run (its JSON, e.g. CI's), printed and with --readme written into README; nothing runs. */
function reprint(file: string, readme: boolean): void {
  const run = JSON.parse(readFileSync(file, "utf8")) as { date: string; commit: string; elapsedMs: number; cores?: number; rows: TableRow[] };
  const table = markdownTable(run.rows);
  console.log(`Reliability matrix, ${run.date}, commit ${run.commit}, ${(run.elapsedMs / 60_000).toFixed(1)} min:\n\n${table}\n`);
  if (readme) writeReadme(run.date, run.commit, run.elapsedMs, run.cores ?? os.cpus().length, table);
}

async function main(): Promise<void> {
  const options = args();
  if (options.from) return reprint(options.from, options.readme);
  const begun = Date.now();
  // The code that runs: taken before the run, so that edits made meanwhile are not credited to it.
  const commit = gitCommit();
  const build = spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) {
    console.error("reliability: npm run build failed (see above); nothing was run");
    process.exit(1);
  }

  // Three runs: referenced files whole, in parallel; the referenced tests that may run alone (the rest of
  // their file is long and not part of the matrix), in parallel; then this folder's tests under load, one
  // file at a time. A file whose tests share state (one supervisor for the file, say) always runs whole.
  const underLoad = testFilesUnder("test/reliability");
  const whole = new Set<string>(testFilesUnder("test/fuzz"));
  const named = new Map<string, Set<string>>();
  for (const row of MATRIX) {
    for (const ref of row.tests) {
      for (const file of filesOf(ref)) {
        if (underLoad.includes(file)) continue;
        if (!ref.name || !ref.alone) whole.add(file);
        else named.set(file, (named.get(file) ?? new Set()).add(ref.name));
      }
    }
  }
  for (const file of whole) named.delete(file);
  const names = [...new Set([...named.values()].flatMap((set) => [...set]))];

  const work = mkdtempSync(path.join(os.tmpdir(), "tsgi-reliability-"));
  const reportFile = path.join(work, "records.jsonl");
  // 100k packets for the uwsgi listener (about a minute); the property fuzzers at 20k inputs and the
  // differential one at 1,500 (each input is a round trip through our proxy and nginx) keep the run bounded.
  const env = {
    ...process.env,
    RELIABILITY_LONG: "1",
    RELIABILITY_REPORT: reportFile,
    FUZZ_RUNS: process.env.FUZZ_RUNS ?? "20000",
    FUZZ_LISTENER_RUNS: process.env.FUZZ_LISTENER_RUNS ?? "100000",
    FUZZ_DIFF_RUNS: process.env.FUZZ_DIFF_RUNS ?? "5000",
  };
  console.log(
    `reliability: ${whole.size + named.size} referenced test files in parallel, then ${underLoad.length} under load one at a time; ` +
      `full bounds (RELIABILITY_LONG=1, FUZZ_RUNS=${env.FUZZ_RUNS})`,
  );
  const runs: VitestRun[] = [
    { files: [...whole], jsonFile: path.join(work, "vitest-whole.json") },
    { files: [...named.keys()], jsonFile: path.join(work, "vitest-named.json"), filter: names.map(escapeRegex).join("|") },
    { files: underLoad, jsonFile: path.join(work, "vitest-under-load.json"), sequential: true },
  ];
  let code: number | null = 0;
  for (const run of runs) {
    const exit = await runVitest(run, env, begun);
    if (code === 0) code = exit;
  }

  const results = new Map(runs.flatMap((run) => [...readResults(run.jsonFile)]));
  const records = readRecords(reportFile);
  const rows = MATRIX.map((row) => judge(row, results, records));
  // Rows recorded under ids of their own (disk faults, log flood, ...) join the table as recorded.
  const known = new Set(MATRIX.map((row) => row.id));
  for (const id of [...new Set(records.map((r) => r.id))].filter((id) => !known.has(id))) {
    const own = records.filter((r) => r.id === id);
    const failed = own.filter((r) => !r.pass);
    const fileResult = own[0]?.file ? results.get(own[0].file) : undefined;
    const testFailed = fileResult?.assertions.some((a) => a.status === "failed" && own.some((r) => r.test === a.fullName));
    rows.push({
      id,
      done: [...new Set(own.map((r) => r.done))].join("; "),
      figure: own.map((r) => r.figure).join("; "),
      pass: failed.length === 0 && !testFailed,
      tests: [...new Set(own.map((r) => `${r.file} › ${r.test}`))],
      failure: failed.length || testFailed ? `${own[0]?.test} failed; rerun: ${rerun(own[0]?.file ?? "", own[0]?.test)}` : undefined,
    });
  }
  // A test that failed but belongs to no row still fails the run.
  const claimed = new Set<string>();
  for (const row of MATRIX) for (const ref of row.tests) for (const file of filesOf(ref)) for (const a of results.get(file)?.assertions ?? []) if (!ref.name || a.fullName.includes(ref.name)) claimed.add(`${file}\0${a.fullName}`);
  const stray = [...results.values()].flatMap((f) => f.assertions.filter((a) => a.status === "failed" && !claimed.has(`${f.file}\0${a.fullName}`)).map((a) => ({ file: f.file, a })));

  const elapsedMs = Date.now() - begun;
  const date = new Date().toISOString().slice(0, 10);
  const table = markdownTable(rows);
  console.log(`\nReliability matrix, ${date}, commit ${commit}, ${(elapsedMs / 60_000).toFixed(1)} min:\n\n${table}\n`);
  for (const row of rows.filter((r) => !r.pass)) console.log(`FAIL ${row.id}: ${row.failure}`);
  for (const { file, a } of stray) console.log(`FAIL (no matrix row) ${file} › ${a.fullName}: ${firstLine(a.failureMessages.join("\n"))}; rerun: ${rerun(file, a.fullName)}`);

  const out = options.out ?? path.join(ROOT, "bench/results", `reliability-${date}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date, commit, elapsedMs, cores: os.cpus().length, vitestExit: code, rows, strayFailures: stray.map(({ file, a }) => `${file} › ${a.fullName}`) }, null, 2)}\n`);
  console.log(`reliability: wrote ${path.relative(process.cwd(), out)}`);

  if (options.readme) writeReadme(date, commit, elapsedMs, os.cpus().length, table);
  rmSync(work, { recursive: true, force: true });
  const ok = code === 0 && rows.every((r) => r.pass) && stray.length === 0;
  process.exit(ok ? 0 : 1);
}

await main();
