/**
 * The README's command table and examples table say what the CLI and the
 * examples folder really have: a row for every command, showing every option
 * that picks the config file, and a row for every example.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerControlCommands } from "../../src/cli/commands/control.ts";
import { registerLogs } from "../../src/cli/commands/logs.ts";
import { registerServe } from "../../src/cli/commands/serve.ts";
import { registerUp } from "../../src/cli/commands/up.ts";
import { registerValidate } from "../../src/cli/commands/validate.ts";

const root = path.resolve(import.meta.dirname, "../..");
const readme = readFileSync(path.join(root, "README.md"), "utf8");

function commands(): readonly Command[] {
  const program = new Command("tsgi-stack");
  for (const register of [registerUp, registerControlCommands, registerLogs, registerValidate, registerServe]) register(program);
  return program.commands;
}

/** The README's command table rows, by command name: the usage cell of `| \`tsgi-stack NAME …\` | … |`. */
function commandRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const match of readme.matchAll(/^\| `tsgi-stack ([a-z]+)([^`]*)` \|/gm)) rows.set(match[1]!, match[2]!);
  return rows;
}

describe("README", () => {
  it("has a row for every command, and each row shows -c FILE where the command takes it", () => {
    const rows = commandRows();
    for (const command of commands()) {
      const row = rows.get(command.name());
      expect(row, `README has no row for \`tsgi-stack ${command.name()}\``).toBeDefined();
      if (command.options.some((option) => option.short === "-c")) expect(row, command.name()).toContain("-c FILE");
    }
  });

  it("lists every example folder", () => {
    const examples = readdirSync(path.join(root, "examples"), { withFileTypes: true }).filter((entry) => entry.isDirectory());
    for (const example of examples) expect(readme, example.name).toContain(`[examples/${example.name}](examples/${example.name}`);
  });
});
