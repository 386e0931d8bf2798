/**
 * @module test/helpers/prometheus
 *
 * The metrics read as Prometheus reads them, never by regex: `promtool check
 * metrics` (Prometheus' own linter, Debian's prometheus package) and the
 * official Python client's text-format parser (Debian's
 * python3-prometheus-client), which turns an exposition into samples.
 */
import { spawnSync } from "node:child_process";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"name": s.name, "labels": s.labels, "value": s.value, "family": family.name, "type": family.type})
json.dump(out, sys.stdout)
`;

/** Every sample of an exposition, as the Prometheus client's parser reads it; throws with the parser's error. */
export function parseExposition(text: string): (Sample & { family: string; type: string })[] {
  const run = spawnSync("/usr/bin/python3", ["-c", PARSE], { input: text, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`the Prometheus parser refused the exposition:\n${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** promtool check metrics: its exit code and what it said (lint problems, one per line). */
export function promtoolCheck(text: string): { code: number | null; output: string } {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { code: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** The sum of the samples named `name` whose labels include these (other labels may differ); undefined when there is none. */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  return found.length === 0 ? undefined : found.reduce((sum, sample) => sum + sample.value, 0);
}
