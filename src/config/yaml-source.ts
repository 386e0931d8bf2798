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
}

export interface YamlSource {
  doc: Document.Parsed;
  lines: LineCounter;
}

/** Parses one YAML document; syntax errors come back with their positions, all of them. */
export function parseYaml(text: string): { source: YamlSource; errors: SourceProblem[] } {
  const lines = new LineCounter();
  // prettyErrors off: the message stays one line, and the position is ours to format.
  // merge: `<<: *base` lets apps share settings, as docker-compose files do.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
  const errors = doc.errors.map((error) => ({ ...positionOf(lines, error.pos[0]), message: error.message }));
  return { source: { doc, lines }, errors };
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
