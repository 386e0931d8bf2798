/**
 * The part of autocannon's API the reliability tests use: autocannon ships no
 * types and @types/autocannon is not a dependency, so the shape is said here.
 */
declare module "autocannon" {
  namespace autocannon {
    interface Options {
      url: string;
      connections?: number;
      overallRate?: number;
      duration?: number;
      method?: string;
      body?: string;
      headers?: Record<string, string>;
      expectBody?: string;
      timeout?: number;
    }
    interface Histogram {
      p50: number;
      p99: number;
      max: number;
    }
    interface Result {
      errors: number;
      timeouts: number;
      non2xx: number;
      mismatches: number;
      resets: number;
      latency: Histogram;
      requests: Histogram & { sent: number; total: number };
    }
    interface Instance extends PromiseLike<Result> {
      on(event: "reqError", listener: (error: Error) => void): this;
      on(event: "response", listener: (client: unknown, status: number, bytes: number, ms: number) => void): this;
      on(event: "reqMismatch", listener: (body: string) => void): this;
      stop(): void;
    }
  }
  function autocannon(options: autocannon.Options): autocannon.Instance;
  export default autocannon;
}
