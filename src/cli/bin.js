#!/usr/bin/env node
// The `tsgi-stack` command. Registers tsx so that our TypeScript sources, and
// the user's TypeScript apps, load without a build step; then runs the CLI.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
