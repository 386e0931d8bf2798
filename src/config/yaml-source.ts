/**
 * @module config/yaml-source
 *
 * The YAML side of the loader: parse with the `yaml` package keeping every
 * node's source range (parseDocument + LineCounter), walk the nodes with their
 * key paths, and turn a key path back into `line:column` — which is how an
 * error found in the plain data (by the schema or a check) gets its position
 * in the file (issue #3). No I/O: text in, nodes and positions out.
 */
import { type Alias, type Document, LineCounter, type Node, type Pair, type Scalar, isAlias, isMap, isScalar, isSeq, parseDocument } from "yaml";
import type { PathSegment } from "./errors.ts";

export interface Position {
  line: number;
  column: number;
}

export interface SourceProblem extends Position {
  message: string;
  /** The key path the problem is under (`apps.hello.routes`), as far as the broken text tells. */
  key: string;
}

export interface YamlSource {
  doc: Document.Parsed;
  lines: LineCounter;
}

/** Parses one YAML document; syntax errors come back with their positions, all of them. */
export function parseYaml(text: string): { source: YamlSource; errors: SourceProblem[] } {
  const lines = new LineCounter();
  const tooDeep = flowDepthExceeded(text);
  if (tooDeep !== undefined) {
    // Not parsed at all: the parser would overflow its stack. An empty document stands in; callers stop at the error.
    const doc = parseDocument("", { lineCounter: lines });
    let line = 1;
    let column = 1;
    for (let i = 0; i < tooDeep; i++) {
      if (text[i] === "\n") {
        line++;
        column = 1;
      } else column++;
    }
    return { source: { doc, lines }, errors: [{ line, column, message: `nested more than ${MAX_NESTING} levels deep`, key: keyPathAt(text, line) }] };
  }
  // prettyErrors off: the message stays one line, and the position is ours to format.
  // merge: `<<: *base` lets apps share settings, as docker-compose files do.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
  const errors = doc.errors.map((error) => {
    const at = positionOf(lines, culpritOffset(text, error.pos[0], error.message));
    return { ...at, message: error.message, key: keyPathAt(text, at.line) };
  });
  return { source: { doc, lines }, errors };
}

/** A config nests a few levels; a file nested deeper than this is refused by name, not by the parser's stack overflow. */
const MAX_NESTING = 64;

/** The offset of the first `[` or `{` nested past MAX_NESTING (outside quotes and comments), or undefined. */
function flowDepthExceeded(text: string): number | undefined {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quote) {
      if (char === quote) quote = undefined;
      else if (char === "\n") quote = undefined;
      continue;
    }
    if (char === '"' || char === "'") quote = char;
    else if (char === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      const end = text.indexOf("\n", i);
      if (end === -1) break;
      i = end;
    } else if (char === "[" || char === "{") {
      if (++depth > MAX_NESTING) return i;
    } else if (char === "]" || char === "}") depth = Math.max(0, depth - 1);
  }
  return undefined;
}

/**
 * Where a syntax error was made, rather than where the parser noticed it: an
 * unclosed `[` or `{` is reported where the next line starts, an unclosed
 * quote at the end of the file — the place to fix is the opening one.
 */
function culpritOffset(text: string, noticedAt: number, message: string): number {
  if (/closing "quote|closing 'quote/.test(message)) {
    const quote = message.includes(`closing "`) ? '"' : "'";
    const opening = text.lastIndexOf(quote, Math.min(noticedAt, text.length - 1));
    return opening === -1 ? noticedAt : opening;
  }
  if (/Flow (sequence|mapping)|end with a [\]}]/.test(message)) {
    let depth = 0;
    for (let i = Math.min(noticedAt, text.length) - 1; i >= 0; i--) {
      const char = text[i];
      if (char === "]" || char === "}") depth++;
      else if (char === "[" || char === "{") {
        if (depth === 0) return i;
        depth--;
      }
    }
  }
  return noticedAt;
}

/**
 * The key path of line `line` (1-based) of block-style YAML, read off the
 * indentation of the `key:` lines above it: what a syntax error is under,
 * when the document cannot be walked. Best effort: "" at the top level.
 */
export function keyPathAt(text: string, line: number): string {
  const stack: { indent: number; key: string }[] = [];
  const lines = text.split("\n");
  for (let number = 1; number <= Math.min(line, lines.length); number++) {
    const match = /^(\s*)(?:- )?([^\s#:][^:#]*?):(?:\s|$)/.exec(lines[number - 1]!);
    if (!match) continue;
    const indent = match[1]!.length;
    while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
    stack.push({ indent, key: match[2]!.trim() });
  }
  return stack.map((entry) => entry.key).join(".");
}

export function positionOf(lines: LineCounter, offset: number): Position {
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

function start(source: YamlSource, node: { range?: [number, number, number] | null } | null | undefined): Position | undefined {
  return node?.range ? positionOf(source.lines, node.range[0]) : undefined;
}

function resolve(source: YamlSource, node: unknown): unknown {
  return isAlias(node) ? node.resolve(source.doc) : node;
}

function findPair(map: { items: Pair[] }, key: PathSegment): Pair | undefined {
  return map.items.find((pair) => (isScalar(pair.key) ? String(pair.key.value) : String(pair.key)) === String(key));
}

/**
 * Where the entry at `segments` is written: the start of its key in a mapping,
 * of the item in a list. A path that goes past what the file holds (a missing
 * required key) stops at the deepest entry that exists, which is where the
 * user has to add it.
 */
export function locate(source: YamlSource, segments: readonly PathSegment[]): Position {
  let node: unknown = source.doc.contents;
  let position = start(source, source.doc.contents as Node | null) ?? { line: 1, column: 1 };
  for (const segment of segments) {
    node = resolve(source, node);
    if (isMap(node)) {
      const pair = findPair(node, segment);
      if (!pair) break;
      position = start(source, pair.key as Node) ?? position;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number" && node.items[segment] !== undefined) {
      node = node.items[segment];
      position = start(source, node as Node) ?? position;
    } else {
      break;
    }
  }
  return position;
}

/**
 * Calls `visit` with every scalar VALUE (not the keys) and its key path, in
 * document order, and `onAlias` with every alias. A value reached through an
 * alias is visited once, where its anchor is.
 */
export function walkScalars(
  source: YamlSource,
  visit: (scalar: Scalar, segments: PathSegment[]) => void,
  onAlias: (alias: Alias, segments: PathSegment[]) => void = () => {},
): void {
  const walk = (node: unknown, segments: PathSegment[]): void => {
    if (isAlias(node)) {
      onAlias(node, segments);
    } else if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.value, [...segments, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => walk(item, [...segments, index]));
    } else if (isScalar(node)) {
      visit(node, segments);
    }
  };
  walk(source.doc.contents, []);
}

/**
 * Aliases whose anchor is not defined before them. The parser accepts them and
 * toJS() would throw on the first: found here, each gets its position.
 */
export function badAliases(source: YamlSource): { name: string; segments: PathSegment[] }[] {
  const found: { name: string; segments: PathSegment[] }[] = [];
  walkScalars(source, () => {}, (alias, segments) => {
    if (alias.resolve(source.doc) === undefined) found.push({ name: alias.source, segments });
  });
  return found;
}
