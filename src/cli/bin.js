#!/usr/bin/env node
// The `tsgi-stack` command. Registers tsx so that our TypeScript sources, and
// the user's TypeScript apps, load without a build step; then runs the CLI.
// Both loaders: a .ts file outside any "type": "module" package is CommonJS
// to Node, and without tsx's CommonJS hook Node's require(esm) rejects it.
import { register as registerEsm } from "tsx/esm/api";
import { register as registerCjs } from "tsx/cjs/api";

registerCjs();
registerEsm();
await import("./main.ts");
