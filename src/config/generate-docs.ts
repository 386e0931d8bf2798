/**
 * @module config/generate-docs
 *
 * Renders docs/config.schema.json (for editors) and docs/config.md (for
 * people) from the one schema in schema.ts. Both files are
 * marked "do not edit"; test/config/docs.test.ts renders them in memory and
 * fails when the committed ones are stale. Regenerate with:
 *
 *   node --import tsx src/config/generate-docs.ts
 *
 * The JSON Schema is TypeBox's own, with two changes: fields that have a
 * default are not `required` (the file may leave them out; see schema.ts), and
 * our `x-` annotations are dropped (their meaning is in the descriptions and
 * patterns), so strict validators such as ajv take it as it is. A string
 * with a pattern also accepts a `${VAR}` / `${VAR:-default}` reference in
 * it: the editor sees the file before the loader expands it, and the loader
 * checks the expanded value against the pattern.
 */
import { writeFileSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Kind } from "./typebox.ts";
import { choicesOf } from "./messages.ts";
import { type AnySchema, FORMAT, FORMATS, type FormatName, KEY_FORMAT, StackConfigSchema } from "./schema.ts";

export const REGENERATE = "node --import tsx src/config/generate-docs.ts";
const NOTICE = `generated from src/config/schema.ts by src/config/generate-docs.ts — do not edit; regenerate with: ${REGENERATE}`;

/* ------------------------------------------------------------------ JSON Schema */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A `${VAR}` or `${VAR:-default}` anywhere in a string (config/env.ts expands it before validation). */
const ENV_REFERENCE = "\\$\\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\\}";

function cleanForEditors(node: Json): Json {
  if (Array.isArray(node)) return node.map(cleanForEditors);
  if (node === null || typeof node !== "object") return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (!key.startsWith("x-")) out[key] = cleanForEditors(value);
  }
  const properties = out.properties;
  if (Array.isArray(out.required) && properties && typeof properties === "object" && !Array.isArray(properties)) {
    const required = out.required.filter((name) => {
      const property = properties[String(name)];
      return !(property && typeof property === "object" && "default" in property);
    });
    if (required.length > 0) out.required = required;
    else delete out.required;
  }
  if (out.type === "string" && typeof out.pattern === "string") {
    out.pattern = `(?:${out.pattern})|${ENV_REFERENCE}`;
  }
  if (typeof out.description === "string" && "default" in out && typeof out.default !== "object") {
    out.description = `${out.description} Default: ${String(out.default)}.`;
  }
  return out;
}

export function renderJsonSchema(): string {
  const schema = cleanForEditors(JSON.parse(JSON.stringify(StackConfigSchema)) as Json) as { [key: string]: Json };
  const document = {
    $schema: "http://json-schema.org/draft-07/schema#",
    $comment: NOTICE,
    title: "tsgi-stack config",
    ...schema,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/* ------------------------------------------------------------------ Markdown */

const code = (text: string) => `\`${text}\``;
const cell = (text: string) => text.replace(/\|/g, "\\|");

function formatOf(schema: AnySchema): FormatName | undefined {
  const format = schema[FORMAT];
  return typeof format === "string" && format in FORMATS ? (format as FormatName) : undefined;
}

function propertiesOf(schema: AnySchema): [string, AnySchema][] {
  return Object.entries((schema.properties as Record<string, AnySchema> | undefined) ?? {});
}

function recordValueOf(schema: AnySchema): AnySchema | undefined {
  const patterns = schema.patternProperties as Record<string, AnySchema> | undefined;
  return patterns ? Object.values(patterns)[0] : undefined;
}

function typeName(schema: AnySchema): string {
  const format = formatOf(schema);
  if (format) {
    const info: { type: string; unit?: string } = FORMATS[format];
    return info.unit ? `${info.type} (${info.unit})` : info.type;
  }
  const choices = choicesOf(schema);
  if (choices) return choices.map(code).join(" | ");
  switch (schema[Kind]) {
    case "Integer":
      return typeof schema.minimum === "number" ? `integer ≥ ${schema.minimum}` : "integer";
    case "String":
      return "string";
    case "Array": {
      const items = schema.items as AnySchema;
      return items[Kind] === "Object" ? "list of mappings" : `list of ${typeName(items)}`;
    }
    case "Record": {
      const value = recordValueOf(schema);
      const keyFormat = schema[KEY_FORMAT];
      const keys = typeof keyFormat === "string" && keyFormat in FORMATS ? FORMATS[keyFormat as FormatName].type : "name";
      return `map of ${keys} → ${value ? typeName(value) : "value"}`;
    }
    case "Object":
      return "mapping";
    default:
      return String(schema[Kind] ?? "value").toLowerCase();
  }
}

function defaultText(schema: AnySchema, required: boolean): string {
  if (!("default" in schema)) return required ? "**required**" : "—";
  const value = schema.default;
  // An object defaults to its fields' defaults (listed in its own section); a map to empty.
  if (value !== null && typeof value === "object" && !Array.isArray(value)) return schema[Kind] === "Record" ? code("{}") : "see below";
  if (Array.isArray(value)) return value.length === 0 ? code("[]") : code(JSON.stringify(value));
  return code(String(value));
}

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^a-z0-9 _-]/g, "").replace(/ /g, "-");
}

const TOP = "Top level";

interface Section {
  title: string;
  schema: AnySchema;
}

/** One table per object, and the objects inside it as sections of their own, depth first. */
function renderSection({ title, schema }: Section, out: string[]): void {
  const nested: Section[] = [];
  const required = new Set((schema.required as string[] | undefined) ?? []);
  out.push(`### ${title === TOP ? title : code(title)}`, "", String(schema.description ?? ""), "");
  out.push("| key | type | default | description |", "| --- | --- | --- | --- |");
  for (const [key, property] of propertiesOf(schema)) {
    const path = title === TOP ? key : `${title}.${key}`;
    let type = typeName(property);
    let inner: Section | undefined;
    if (property[Kind] === "Object") inner = { title: path, schema: property };
    else if (property[Kind] === "Array" && (property.items as AnySchema)[Kind] === "Object") inner = { title: `${path}[]`, schema: property.items as AnySchema };
    else if (property[Kind] === "Record" && recordValueOf(property)?.[Kind] === "Object") inner = { title: `${path}.<name>`, schema: recordValueOf(property)! };
    if (inner) {
      nested.push(inner);
      type = `${type}, see [${code(inner.title)}](#${anchor(inner.title)})`;
    }
    const description = String(property.description ?? "");
    out.push(`| ${code(key)} | ${cell(type)} | ${cell(defaultText(property, required.has(key)))} | ${cell(description)} |`);
  }
  out.push("");
  for (const section of nested) renderSection(section, out);
}

const VALUE_FORMATS: readonly FormatName[] = ["duration", "size", "address", "path", "module", "glob", "host", "url-path"];

const INTRO = `# The config file

<!-- ${NOTICE} -->

One YAML file declares the whole stack: the front proxy and the apps behind it.
[config.example.yaml](../config.example.yaml)
is a documented example that runs as it is.

- \`tsgi-stack validate [-c FILE]\` checks a file and lists every error, one per
  line, as \`file:line:column key.path: what was expected\`; it exits 1 when
  there is any. \`tsgi-stack up\` refuses a bad file the same way, and a reload
  with a bad file keeps the running config.
- Without \`-c\`, commands read \`tsgi.yaml\` in the current directory.
- Unknown keys are errors (with the nearest known key suggested), so a typo
  never passes silently.
- YAML anchors and merge keys work, so apps can share settings:
  \`api: &base { module: api.ts, instances: 2 }\` then \`admin: { <<: *base, instances: 1 }\`.

## Editor support

The JSON Schema [docs/config.schema.json](config.schema.json) is generated from
the same schema as this page. With the YAML extension of VS Code (or any editor
that speaks yaml-language-server), put this first line in your file to get
completion, hover docs and checking as you type (the path is relative to the
file):

\`\`\`yaml
# yaml-language-server: $schema=node_modules/tsgi-stack/docs/config.schema.json
\`\`\`

(The example in this repository uses \`$schema=docs/config.schema.json\`.) An
editor checks the file as written: a \`\${VAR}\` in a number field shows as a
warning there, while \`tsgi-stack validate\` expands it first.

## How values are written

- **Paths** (\`module\`, \`cwd\`, \`state_dir\`, TLS files, \`watch\` globs) are
  relative to the config file's folder, wherever the command runs. The loaded
  config holds them absolute.
- **Durations**: a number (decimals allowed) with a unit — \`ms\`, \`s\`, \`m\`,
  \`h\`, \`d\`, in any case — such as \`500ms\`, \`30s\`, \`1.5m\`, \`2h\`; parts
  combined as nginx writes them, \`1m30s\`, \`1h 30m\`, \`2s500ms\`; or a bare
  number of seconds (\`30\`). A bare number inside a combination (\`1m30\`) is
  an error. Loaded as milliseconds.
- **Sizes**: a number (decimals allowed) with \`k\`, \`m\` or \`g\` in any case
  (powers of 1024, as nginx), optionally followed by \`b\` or \`ib\` — \`512k\`,
  \`10m\`, \`256M\`, \`256MB\`, \`1GiB\`, \`1.5m\` — or a bare number of bytes
  (\`1024\`). Loaded as bytes.
- **Addresses**: \`HOST:PORT\`, \`[::1]:PORT\`, or \`:PORT\` for loopback. Port 0
  asks the kernel for a free port.
- **Environment variables**: \`\${VAR}\` and \`\${VAR:-default}\` are expanded in
  every value before validation. An unset \`\${VAR}\` without a default is an
  error at its line; \`:-\` also applies when VAR is empty; \`$$\` is a literal
  \`$\`, and a \`$\` not followed by \`{\` is left alone (so \`$PORT\` in a
  \`command\` reaches the shell). An unquoted value is typed after expansion:
  \`instances: \${WORKERS:-2}\` is the number 2.

| format | written as | loaded as |
| --- | --- | --- |
${VALUE_FORMATS.map((name) => FORMATS[name])
  .map((info) => `| ${cell(info.type)} | ${cell(info.expected)} | ${cell(info.loadedAs)} |`)
  .join("\n")}

## Reference

Every key, generated from the schema. A key with a default may be left out.
An app has exactly one of \`module\` and \`command\`.
`;

export function renderMarkdown(): string {
  const out: string[] = [INTRO];
  renderSection({ title: TOP, schema: StackConfigSchema as unknown as AnySchema }, out);
  return `${out.join("\n").trimEnd()}\n`;
}

/* ------------------------------------------------------------------ files */

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), "../..");

/** The generated files, relative to the repository root, with their renderers. */
export const GENERATED: readonly { file: string; render: () => string }[] = [
  { file: "docs/config.schema.json", render: renderJsonSchema },
  { file: "docs/config.md", render: renderMarkdown },
];

export function writeGenerated(root = ROOT): string[] {
  return GENERATED.map(({ file, render }) => {
    writeFileSync(nodePath.join(root, file), render());
    return file;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(nodePath.resolve(process.argv[1])).href) {
  for (const file of writeGenerated()) process.stdout.write(`wrote ${file}\n`);
}
