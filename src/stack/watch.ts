/**
 * @module stack/watch
 *
 * `up --watch`: each app's `watch` globs, watched with chokidar, turn a saved
 * file into one reload of that app. chokidar 4 no longer takes globs, so each
 * glob's fixed base folder is watched and events are matched with picomatch
 * (the matcher chokidar itself used). What makes a watcher pleasant rather
 * than a restart loop:
 *   - node_modules, dot-folders (.git) and the stack's own state folder
 *     (logs and sockets change all the time) are never watched;
 *   - a burst of events — an editor's atomic save (write temp, rename), a
 *     `git checkout`, a formatter touching ten files — is debounced into one
 *     change per app, reported with the files that changed;
 *   - `!pattern` globs exclude (tests, generated files).
 */
import path from "node:path";
import { watch, type FSWatcher } from "chokidar";
import picomatch from "picomatch";

export interface WatchedApp {
  app: string;
  /** Absolute globs; a leading `!` excludes. */
  globs: readonly string[];
}

export interface CodeWatcherOptions {
  /** Folders never watched (the state dir). */
  ignore: readonly string[];
  /** Quiet time after the last event before the change is reported. */
  debounceMs?: number;
  onChange(app: string, files: string[]): void;
  onError?(error: Error): void;
}

interface Matcher {
  app: string;
  includes: (file: string) => boolean;
  excludes: (file: string) => boolean;
}

const ALWAYS_IGNORED = /(^|[/\\])(node_modules|\.[^/\\]+)([/\\]|$)/;

export class CodeWatcher {
  private watcher: FSWatcher | undefined;
  private matchers: Matcher[] = [];
  private readonly pending = new Map<string, { files: Set<string>; timer: NodeJS.Timeout }>();
  private readonly ready: Promise<void>;

  constructor(
    apps: readonly WatchedApp[],
    private readonly options: CodeWatcherOptions,
  ) {
    this.ready = this.watchApps(apps);
  }

  /** Resolves once the initial scan is done: changes from then on are reported. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Watches a new set of apps (a config reload changed `watch`). */
  async update(apps: readonly WatchedApp[]): Promise<void> {
    await this.close();
    await this.watchApps(apps);
  }

  async close(): Promise<void> {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.close();
  }

  private watchApps(apps: readonly WatchedApp[]): Promise<void> {
    this.matchers = apps
      .filter((app) => app.globs.some((glob) => !glob.startsWith("!")))
      .map((app) => {
        const positive = app.globs.filter((glob) => !glob.startsWith("!"));
        const negative = app.globs.filter((glob) => glob.startsWith("!")).map((glob) => glob.slice(1));
        return {
          app: app.app,
          includes: picomatch(positive, { dot: false }),
          excludes: negative.length ? picomatch(negative) : () => false,
        };
      });
    const bases = new Set(apps.flatMap((app) => app.globs.filter((glob) => !glob.startsWith("!")).map(globBase)));
    if (bases.size === 0) return Promise.resolve();
    const ignored = this.options.ignore.map((folder) => path.resolve(folder));
    const watcher = watch([...bases], {
      ignoreInitial: true,
      ignored: (file: string) => ALWAYS_IGNORED.test(path.relative(commonRoot(file, bases), file)) || ignored.some((folder) => file === folder || file.startsWith(`${folder}${path.sep}`)),
    });
    this.watcher = watcher;
    watcher.on("all", (_event, file) => this.onEvent(path.resolve(file)));
    watcher.on("error", (error) => this.options.onError?.(error as Error));
    return new Promise((resolve) => watcher.once("ready", () => resolve()));
  }

  private onEvent(file: string): void {
    for (const matcher of this.matchers) {
      if (!matcher.includes(file) || matcher.excludes(file)) continue;
      const pending = this.pending.get(matcher.app);
      if (pending) {
        pending.files.add(file);
        pending.timer.refresh();
        continue;
      }
      const files = new Set([file]);
      const timer = setTimeout(() => {
        this.pending.delete(matcher.app);
        this.options.onChange(matcher.app, [...files]);
      }, this.options.debounceMs ?? 150);
      this.pending.set(matcher.app, { files, timer });
    }
  }
}

/** The folder a glob's matches all live under: `/app/src/**\/*.ts` -> `/app/src`. */
export function globBase(glob: string): string {
  return picomatch.scan(glob).base || path.parse(glob).root;
}

/** The watched base `file` is under (so that a dot-folder above it, e.g. a checkout in ~/.projects, is not held against it). */
function commonRoot(file: string, bases: ReadonlySet<string>): string {
  for (const base of bases) if (file === base || file.startsWith(`${base}${path.sep}`)) return base;
  return path.parse(file).root;
}
