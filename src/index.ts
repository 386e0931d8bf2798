/**
 * @module tsgi-stack
 *
 * The public API: the TSGI types, the helpers apps and middleware use, the
 * middleware and adapters that ship with the stack. Servers and the CLI are
 * not exported from here; they are run through `tsgi-stack`.
 */
export type * from "./tsgi/types.ts";
export { baseEnviron, requestEnviron, EnvironError, TSGI_VERSION } from "./tsgi/environ.ts";
export type { BaseEnviron, RequestHead, ServerInfo } from "./tsgi/environ.ts";
export { runApp, TsgiContractError } from "./tsgi/handler.ts";
export type { ResponseSink, RunOutcome } from "./tsgi/handler.ts";
export * from "./tsgi/util.ts";
export { toNodeListener } from "./tsgi/adapters/node-http.ts";
export { validator, TsgiValidationError, TsgiWarning } from "./tsgi/validate.ts";
export type { ValidatorOptions } from "./tsgi/validate.ts";
export type { NodeListenerOptions, TsgiNodeListener } from "./tsgi/adapters/node-http.ts";
export { dispatcher } from "./tsgi/middleware/dispatcher.ts";
export type { DispatcherOptions } from "./tsgi/middleware/dispatcher.ts";
export { rewriteBody, goodbye } from "./tsgi/middleware/rewrite-body.ts";
export type { RewriteBodyOptions } from "./tsgi/middleware/rewrite-body.ts";
export { fromNodeListener, environOf } from "./tsgi/adapters/node-listener.ts";
export type { FromNodeListenerOptions, NodeRequestListener } from "./tsgi/adapters/node-listener.ts";
export { fromFetchHandler, toFetchHandler } from "./tsgi/adapters/fetch.ts";
export type { FetchHandler, ToFetchHandlerOptions } from "./tsgi/adapters/fetch.ts";
export type { ConnInfo } from "./tsgi/adapters/conn-info.ts";
