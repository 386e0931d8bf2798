/**
 * @module export/differences
 *
 * What an exporter could not say in its target as the stack says it: a
 * balancing method nginx has no match for, a limit Kubernetes cannot carry,
 * a route form an Ingress cannot express. An exporter notes each one under
 * the config key at fault while it renders; at the end the caller decides —
 * by default the export fails and names every key (nothing silently
 * different is written), with `--force` the nearest equivalent is written
 * and the differences go into the output as comments.
 */
import { Inexpressible } from "./errors.ts";

/** One setting the target cannot express as configured. */
export interface Difference {
  /** The config key at fault, as written in the file: `apps.hello.balance`. */
  key: string;
  /** What the config asks, and what the target does instead. */
  says: string;
}

/** The differences one export found, in the order it found them (one per key). */
export class Differences {
  private readonly found = new Map<string, Difference>();

  note(key: string, says: string): void {
    if (!this.found.has(key)) this.found.set(key, { key, says });
  }

  list(): Difference[] {
    return [...this.found.values()];
  }

  /**
   * Without `force`, throws naming every difference; with it, the lines to
   * put at the top of the output (without the target's comment marker).
   */
  settle(target: string, configFile: string, force: boolean): string[] {
    const all = this.list();
    if (all.length === 0) return [];
    if (!force) {
      const lines = all.map((difference) => `  ${difference.key}: ${difference.says}`);
      throw new Inexpressible(
        `export ${target}: ${configFile} asks for ${all.length === 1 ? "a setting" : `${all.length} settings`} ${target} cannot express:\n${lines.join("\n")}\n` +
          `nothing was written; --force writes the nearest equivalent, with these differences as comments`,
        { at: all[0]!.key },
      );
    }
    return [`Written with --force: ${target} does not do what ${configFile} says here:`, ...all.map((difference) => `  ${difference.key}: ${difference.says}`)];
  }
}
