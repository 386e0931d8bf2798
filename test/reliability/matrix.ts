/**
 * @module test/reliability/matrix
 *
 * The reliability matrix: every row the stack promises, in the words a user
 * reads, and the tests that show it. A row is shown either by a test in this
 * folder (against the real stack, with a recorded figure) or by a test that
 * already exists elsewhere and is referenced here, not copied. `npm run
 * reliability` runs every file named below and builds its table from this
 * list; matrix.test.ts checks that every reference still names a test.
 *
 * A reference names a file and the text its test's full name contains
 * (describe titles, then the test title, joined by spaces — vitest's fullName).
 * A `dir` reference covers every test file under that folder; a row whose
 * folder does not exist yet is reported as not run, and fails.
 */
export interface TestRef {
  file?: string;
  /** Every *.test.ts under this folder (for suites written elsewhere, such as the fuzzers). */
  dir?: string;
  /** Text the test's full name contains; absent: every test in the file(s). */
  name?: string;
  /**
   * The named test may run without the rest of its file (vitest -t): `npm run reliability` then runs
   * only it. Only for tests that share no state with their neighbours; others run with their whole file.
   */
  alone?: boolean;
}

export interface MatrixRow {
  id: string;
  /** What is done to the stack and what must hold, in a line. */
  title: string;
  /** The goal, as the figure must show it. */
  goal: string;
  tests: TestRef[];
}

const here = (file: string, id: string): TestRef => ({ file: `test/reliability/${file}`, name: `${id}:` });

export const MATRIX: readonly MatrixRow[] = [
  { id: "R1", title: "rolling reloads under steady load, 4 workers, 2 KB bodies", goal: "0 failed (status, reset, altered body)", tests: [here("reload.test.ts", "R1")] },
  { id: "R2", title: "20 slow requests in flight survive a reload", goal: "20/20 complete with full body; old workers exit after drain", tests: [here("reload.test.ts", "R2")] },
  { id: "R3", title: "a request longer than graceful_timeout during a reload", goal: "old worker killed at the deadline; client gets an answer or a close, not a hang; no process left", tests: [here("reload.test.ts", "R3")] },
  { id: "R4", title: "reload onto code that throws at import, under load", goal: "old workers keep serving, 0 failed; the reload reported failed", tests: [here("reload.test.ts", "R4")] },
  {
    id: "R5",
    title: "an app that dies at boot: back-off, then halted; the proxy answers 503 fast",
    goal: "restarts bounded by max_restarts; 503 with Retry-After",
    tests: [
      { file: "test/supervisor/supervisor.test.ts", name: "restarts a command that never starts listening, then calls it a crash loop" },
      { file: "test/supervisor/supervisor.test.ts", name: "halts a pool whose module cannot load, without a restart loop" },
      { file: "test/supervisor/supervisor.test.ts", name: "stops a command that exits at once after max_restarts, not forever" },
      { file: "test/proxy/front-proxy.test.ts", name: "an app with no ready endpoint: 503 with Retry-After" },
    ],
  },
  { id: "R6", title: "SIGKILL a worker every few seconds under a GET + POST mix", goal: "0 failed GETs; 0 POSTs run twice (app-side count)", tests: [here("worker-kill.test.ts", "R6")] },
  { id: "R7", title: "requests stuck in an infinite loop beside healthy traffic", goal: "stuck worker killed at timeout and replaced; stuck requests answered; healthy route 0 failed", tests: [here("worker-kill.test.ts", "R7"), { file: "test/integration/blocked-worker.test.ts" }] },
  {
    id: "R8",
    title: "a worker over max_memory is recycled",
    goal: "recycled, the pool serves on",
    tests: [{ file: "test/supervisor/supervisor.test.ts", name: "has pm2 recycle a worker past maxMemoryBytes, and the pool serves on" }],
  },
  {
    id: "R9",
    title: "invalid YAML saved over a running stack, then a valid change adding a route",
    goal: "invalid: old config kept and reported, 0 failed; valid: live within 2 s",
    tests: [{ file: "test/integration/reload.test.ts", name: "an invalid config saved over a running stack is ignored and reported; the next valid save applies", alone: true }],
  },
  { id: "R10", title: "SIGTERM to the stack under keep-alive load", goal: "in-flight finish, keep-alive answers say Connection: close, exit within the deadline", tests: [here("stop.test.ts", "R10")] },
  { id: "U1", title: "one of three workers refuses connections", goal: "every GET and POST succeeds", tests: [{ file: "test/proxy/front-proxy.test.ts", name: "U1:" }] },
  { id: "U2", title: "a worker closes after reading the request", goal: "GET retried, POST 502 and seen once", tests: [{ file: "test/proxy/front-proxy.test.ts", name: "U2:" }, { file: "test/proxy/upstream-faults.test.ts", name: "a POST the worker drops after reading it: 502 by default" }] },
  {
    id: "U3",
    title: "a worker slower than upstream_timeout",
    goal: "504 at the timeout, not sent again",
    tests: [
      { file: "test/proxy/front-proxy.test.ts", name: "a worker slower than upstreamTimeoutMs: 504" },
      { file: "test/proxy/front-proxy.test.ts", name: "a request that timed out on a reused connection is not sent again" },
    ],
  },
  { id: "U4", title: "bad framing from a worker (duplicate CL, CL+TE, unknown TE, huge head)", goal: "502, nothing of the worker's response passed on", tests: [{ file: "test/proxy/upstream-faults.test.ts", name: "U4:" }, { file: "test/proxy/upstream-parsing.test.ts", name: "heads it refuses" }] },
  { id: "U5", title: "a failing worker is left out for fail_timeout", goal: "ejected, then tried again", tests: [{ file: "test/proxy/front-proxy.test.ts", name: "passive health: a worker that refused a connection is left out for fail_timeout" }] },
  { id: "U6", title: "a worker closes mid-body (Content-Length and chunked)", goal: "the client never sees a complete response", tests: [{ file: "test/proxy/upstream-faults.test.ts", name: "U6:" }, { file: "test/proxy/front-proxy.test.ts", name: "a chunked response cut short" }] },
  { id: "L1", title: "request bodies over client_max_body_size", goal: "413, the app sees nothing", tests: [{ file: "test/proxy/front-proxy.test.ts", name: "L1:" }] },
  { id: "L2", title: "a 9 KiB request line, a 17 KiB header, 1001 headers", goal: "414 / 431 / 431, the app sees nothing", tests: [{ file: "test/proxy/front-proxy.test.ts", name: "header limits" }] },
  { id: "L3", title: "slowloris sockets trickling headers beside normal clients", goal: "every slow socket closed within header_timeout; normal clients 0 failed", tests: [here("slowloris.test.ts", "L3")] },
  { id: "L4", title: "a request body that stalls", goal: "408 and close, the worker not pinned", tests: [{ file: "test/proxy/upstream-faults.test.ts", name: "L4:" }] },
  { id: "L5", title: "kept-alive connections to workers that close when idle", goal: "0 resets reach a client", tests: [{ file: "test/proxy/upstream-faults.test.ts", name: "L5:" }] },
  { id: "S1", title: "the 20 request-smuggling payloads", goal: "each refused with a close, the follow-up never executed", tests: [{ file: "test/proxy/smuggling.test.ts", name: "S1 (" }] },
  { id: "S2", title: "valid edge cases (chunked, pipelining, Expect: 100-continue)", goal: "the app sees each once, normalized", tests: [{ file: "test/proxy/smuggling.test.ts", name: "S2 (" }] },
  { id: "S3", title: "differential fuzzing of the front door", goal: "0 crashes, 0 hangs, 0 framing disagreements", tests: [{ dir: "test/fuzz" }] },
  { id: "H1", title: "hop-by-hop and spoofed forwarding headers sent to the real stack", goal: "none reach the app; X-Forwarded-For is the peer", tests: [here("headers.test.ts", "H1"), { file: "test/proxy/front-proxy.test.ts", name: "hop-by-hop request headers" }] },
  { id: "W1", title: "nginx uwsgi_pass in front of the uwsgi listener: nginx's own uwsgi tests", goal: "same outcomes as with uWSGI", tests: [{ file: "test/integration/nginx-uwsgi.test.ts", name: "nginx's uwsgi" }] },
  {
    id: "W2",
    title: "malformed and random uwsgi packets",
    goal: "rejected with a log line, no crash",
    tests: [
      { file: "test/gateway/uwsgi-parser.test.ts", name: "fuzz" },
      { file: "test/gateway/uwsgi-server.test.ts", name: "survives 300 random packets" },
      { file: "test/fuzz/uwsgi-listener.fuzz.test.ts", name: "" },
    ],
  },
  { id: "W3", title: "nginx over uwsgi in front of the workers during rolling reloads", goal: "0 nginx 5xx", tests: [here("nginx-reload.test.ts", "W3")] },

  // The faults a fault campaign found against a running `up`, each injected for real.
  { id: "F1", title: "a full disk, then a read-only state dir, under a running stack", goal: "0 failed requests; failed log writes counted; one-line errors at up", tests: [{ file: "test/reliability/disk-faults.test.ts" }] },
  {
    id: "F2",
    title: "pm2's daemon SIGKILLed, then a worker",
    goal: "workers ready again on a new daemon within 10 s; every command bounded",
    tests: [{ file: "test/supervisor/daemon-loss.test.ts" }, { file: "test/integration/daemon-loss.test.ts", name: "is replaced, its workers start again within 10 s" }],
  },
  { id: "F3", title: "down with a 60 s request in flight, and with an endless stream under timeout: 0", goal: "the stack gone within graceful_timeout + 5 s", tests: [{ file: "test/integration/bounded-stop.test.ts" }] },
  { id: "F4", title: "an app flooding its stdout while a worker is killed", goal: "stack and pm2 RSS < 150 MB; logs within their bound; the killed worker replaced promptly", tests: [{ file: "test/reliability/log-flood.test.ts" }] },
  { id: "F5", title: "a worker stopped with SIGSTOP, no health check", goal: "out of balancing within 5 s, back on SIGCONT", tests: [{ file: "test/integration/blocked-worker.test.ts", name: "SIGSTOP" }] },
  {
    id: "F6",
    title: "restart and scale whose new workers cannot load",
    goal: "the old workers keep serving; exit 1 naming the app",
    tests: [{ file: "test/integration/stack.test.ts", name: "restart and scale whose new workers cannot load" }, { file: "test/supervisor/rules.test.ts", name: "restart() whose new worker cannot load" }],
  },
  { id: "F7", title: "the state dir's sockets/ folder removed under a running stack", goal: "workers bind new sockets and serve again", tests: [{ file: "test/integration/stack.test.ts", name: "sockets/ folder removed" }] },
  {
    id: "F8",
    title: "the stack process SIGKILLed, pm2 and its workers left running",
    goal: "status and down find them; the next up adopts them",
    tests: [
      { file: "test/integration/daemon-loss.test.ts", name: "status names the daemon it left" },
      { file: "test/integration/daemon-loss.test.ts", name: "taken over as they run" },
    ],
  },
  { id: "F9", title: "a burst of reload requests (SIGHUP, CLI)", goal: "the running one and at most one more; every caller answered", tests: [{ file: "test/stack/reloader.test.ts" }] },
  { id: "F10", title: "a config roll onto a module that does not load, then a reload", goal: "the roll fails; the next reload does not call the old code new", tests: [{ file: "test/integration/reload.test.ts", name: "a config roll onto a module that does not load", alone: true }] },
  {
    id: "F11",
    title: "durations past Node's timer limit, huge counts and hosts, deep nesting in the config",
    goal: "validate names the key and line",
    // The corpus of bad configs holds them (bounds.yaml, too-deep.yaml), each error exactly.
    tests: [{ file: "test/config/golden.test.ts", name: "bad configs: every error, exactly" }],
  },
  { id: "F12", title: "a halt after an earlier run in the same state dir; a shell builtin as command", goal: "the halt quotes this run's stderr; the builtin runs", tests: [{ file: "test/supervisor/halt-stderr.test.ts" }] },
];
