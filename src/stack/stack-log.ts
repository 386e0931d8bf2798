/**
 * @module stack/stack-log
 *
 * The stack process's own log, structured with pino: its lines (`serving on
 * …`, `web: reloaded 2 workers`) and the workers' lines it relays, each as
 * one record with a time, a level and, for a relayed line, `app`, `slot`,
 * `stream` and `written` (the time the worker stamped the line with, taken
 * off the message: contract/line-stamp.ts). A terminal gets them pretty-printed (pino-pretty's
 * prettyFactory, called in this thread: no transport, no worker thread);
 * a pipe or a file (`stack.log` under `up -d`) gets one JSON object per line,
 * for a program to read. TSGI_LOG_FORMAT=pretty|json chooses either way.
 *
 * Every line ends in StackOutput's guarded write (stack/output.ts), never in
 * a stream of pino's own: a full or read-only disk costs lines, counted for
 * `status`, never the stack.
 */
import { pino, type Logger } from "pino";
import { prettyFactory } from "pino-pretty";
import { LINE_STAMP, withoutLineStamp } from "../contract/line-stamp.ts";
import { LogFormatInvalid } from "./errors.ts";
import type { StackOutput } from "./output.ts";
import type { RelayedLine } from "../supervisor/log-keeper.ts";

export type StackLogFormat = "pretty" | "json";

/** The environment variable that forces a format, whatever stdout is. */
export const LOG_FORMAT_ENV = "TSGI_LOG_FORMAT";

const FORMATS: readonly StackLogFormat[] = ["pretty", "json"];

/** The format asked for by TSGI_LOG_FORMAT, or else pretty on a terminal and JSON anywhere else. */
export function stackLogFormat(env: NodeJS.ProcessEnv = process.env, isTerminal = process.stdout.isTTY === true): StackLogFormat {
  const asked = env[LOG_FORMAT_ENV];
  if (asked === undefined || asked === "") return isTerminal ? "pretty" : "json";
  if ((FORMATS as readonly string[]).includes(asked)) return asked as StackLogFormat;
  throw new LogFormatInvalid(LOG_FORMAT_ENV, asked);
}

/** One record as the logger writes it (the fields this module sets). */
interface StackRecord {
  msg: string;
  app?: string;
  slot?: number;
  stream?: "out" | "err";
}

/**
 * The pretty line of a record: `tsgi-stack: serving on …` for the stack's
 * own, `app.slot | text` for a worker's — the words `up` printed before
 * it had a logger, after the time and level.
 */
function prettyMessage(record: Record<string, unknown>): string {
  const { msg, app, slot } = record as unknown as StackRecord;
  return app === undefined ? `tsgi-stack: ${msg}` : `${app}.${slot} | ${msg}`;
}

/** A line of stack.log as `up` prints it on a terminal, without time and level: a JSON record's words, or the line as it is. */
export function printedLine(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const record = JSON.parse(line) as Record<string, unknown>;
    if (typeof record.msg !== "string") return line;
    return record.summary === true ? record.msg : prettyMessage(record);
  } catch {
    return line;
  }
}

export interface StackLog {
  /** One line of the stack's own. */
  say(message: string): void;
  /** One line of a worker's, relayed from its log file: on stderr when the worker wrote it there. */
  relay(line: RelayedLine): void;
  /** One line of `up`'s per-app summary: as it is on a terminal (a table's row), a record `{ summary: true }` in JSON. */
  summary(line: string): void;
}

/** The stack's log, written through `output` (guarded, counted) in `format`. */
export function createStackLog(output: StackOutput, format: StackLogFormat, colorize = process.stdout.isTTY === true): StackLog {
  const render =
    format === "pretty"
      ? prettyFactory({
          colorize,
          singleLine: true,
          translateTime: "SYS:HH:MM:ss.l",
          ignore: "pid,hostname,app,slot,stream,written",
          messageFormat: prettyMessage,
        })
      : (line: string) => line;
  const loggerTo = (stream: "out" | "err"): Logger =>
    pino(
      { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
      { write: (line: string) => output.write(stream, render(line)) },
    );
  const out = loggerTo("out");
  const err = loggerTo("err");
  return {
    say: (message) => out.info(message),
    summary: (line) => (format === "pretty" ? output.write("out", `${line}\n`) : out.info({ summary: true }, line.trimStart())),
    relay: ({ app, slot, stream, text }) => {
      const written = LINE_STAMP.exec(text)?.[1];
      const fields = { app, slot, stream, ...(written ? { written } : {}) };
      (stream === "err" ? err : out).info(fields, written ? withoutLineStamp(text) : text);
    },
  };
}
