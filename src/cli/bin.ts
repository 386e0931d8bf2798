#!/usr/bin/env node
// The `tsgi-stack` command, as built to dist/cli/bin.js. It loads no
// TypeScript loader: our own code is compiled, and a gateway worker registers
// one only when the app it serves is a TypeScript file (gateway/typescript.ts).
await import("./main.ts");
