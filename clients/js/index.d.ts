// Types of flushout-hub-client (hand-written; the package ships plain ES modules).
import type { CommandAction } from "flushout";
import type {
  Command,
  CompletionBatch,
  CompletionError,
  Interceptor,
  Result,
  Snapshot,
  ApplyResult,
} from "flushout";

export { Proxy, Master, PathMapper, CommandAction } from "flushout";
export type {
  Command,
  CommandCompletion,
  CompletionBatch,
  CompletionError,
  Interceptor,
  Result,
  Snapshot,
  Sync,
  ApplyResult,
} from "flushout";
export * from "./wire.js";

/** Connection status: connecting → open → offline → connecting …; closed after close(). */
export type HubStatus = "connecting" | "open" | "offline" | "closed";

/** What the client and its models report through their "error" events. */
export interface HubError {
  /**
   * A hub error code (bad_request, forbidden, too_large, rate_limited, overloaded,
   * shutting_down, internal, gone, unauthorized, bad_frame) or one of the client's own:
   * connect (a connection attempt failed: refused, host not found, the upgrade's HTTP
   * status in `status`), closed (an open connection was closed by the hub or the network:
   * `closeCode`, `reason`), connect_timeout (no welcome within connectTimeout),
   * rejected (the hub failed some flushed commands; see `errors`), resync (the Proxy could
   * not take a sync and is being rebuilt from a snapshot), local_reset (queued local
   * commands had to be dropped), timeout (a sub got no reply; sent again), no_websocket,
   * send.
   */
  code: string;
  /** Says why, e.g. "connection refused (127.0.0.1:7420)", "upgrade refused: HTTP 404 (...)". */
  message: string;
  model?: string;
  errors?: CompletionError[];
  /** rate_limited, overloaded: the hub said to send the request again after this many ms. */
  retryAfterMs?: number;
  /** connect, closed, connect_timeout: the hub's URL (without the token). */
  url?: string;
  /** connect: the HTTP status that refused the upgrade, when the WebSocket tells it (Node's `ws`). */
  status?: number;
  /** closed: the WebSocket close code (1001: the hub is shutting down; 1006: no close frame). */
  closeCode?: number;
  /** closed: the close reason the hub sent, if any. */
  reason?: string;
}

/**
 * What apply() returns: the library's Result, with `createdId` and `error` present (as
 * undefined) on both branches, so that either can be read or destructured before narrowing.
 */
export type HubResult =
  | { isSuccess: true; createdId?: string; error?: undefined }
  | { isSuccess: false; error: string; createdId?: undefined };

/** What apply() returns for a create: on success, `createdId` is always there. */
export type CreateResult =
  | { isSuccess: true; createdId: string; error?: undefined }
  | { isSuccess: false; error: string; createdId?: undefined };

/** A delete with the wire's spelling, which apply() takes as well as CommandAction.Delete. */
export type WireDeleteCommand = { path?: string[]; action: "delete" };

/** Any WebSocket class with the browser's API (the browser's, Node's, or `ws`). */
export interface WebSocketLike {
  new (url: string, protocols?: string | string[]): {
    binaryType: string;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: { data: unknown }) => void) | null;
    onclose: ((ev: unknown) => void) | null;
    onerror: ((ev: unknown) => void) | null;
    send(data: Uint8Array): void;
    close(code?: number, reason?: string): void;
  };
}

export interface HubClientOptions {
  /** ws://HOST:PORT/v1/ws, or wss:// for a hub with --tls-cert. Default: the page's host in a browser, else ws://127.0.0.1:7420/v1/ws. */
  url?: string;
  /** Sent as ?token= (browsers cannot set headers) and in hello. */
  token?: string;
  /**
   * Stable id of this client (1-64 bytes), the key of the hub's exactly-once. Default: a
   * fresh random id per HubClient. A stable id makes sequence numbers start from the clock.
   */
  clientId?: string;
  /** WebSocket implementation. Default: globalThis.WebSocket, else the `ws` package. */
  WebSocket?: WebSocketLike;
  /**
   * wss:// with a private CA (Node): its certificates (PEM), passed to `ws` as `ca`.
   * Default: Node's CAs (NODE_EXTRA_CA_CERTS adds to them). The hub's certificate is
   * always verified.
   */
  ca?: string | Uint8Array;
  /** Connect in the constructor (default true). */
  autoConnect?: boolean;
  /** Idle delay before a background flush, ms (default 20). */
  flushDelay?: number;
  /** Longest delay between the first queued command and its flush, ms (default 200). */
  maxFlushDelay?: number;
  /** Flush at once when this many commands wait (default 200). */
  maxBatch?: number;
  /** Reconnect backoff: first delay and cap, ms (defaults 250 and 8000), with jitter. */
  backoffInitial?: number;
  backoffMax?: number;
  /** Give up on a connection attempt after this long, ms (default 10000). */
  connectTimeout?: number;
  /**
   * Delay before retrying after overloaded/rate_limited/shutting_down/internal, ms (default
   * 500), when the hub's error gives no `retryAfterMs` (then that is the delay).
   */
  retryDelay?: number;
  /** Subscribe again when a sub gets no reply within this long, ms (default 15000). */
  subTimeout?: number;
  /** In a browser, follow the online/offline events (default true). */
  watchNetwork?: boolean;
}

export interface ModelOptions<T extends object = any> {
  /** The reference Proxy's test mode: IDs are commandCount + 1 + attempt. */
  sequentialIds?: boolean;
  /** The reference Proxy's interceptor, run on local commands. */
  interceptor?: Interceptor<T, any>;
  flushDelay?: number;
  maxFlushDelay?: number;
  maxBatch?: number;
}

type Unsubscribe = () => void;

export interface HubClientEvents {
  status: (status: HubStatus) => void;
  error: (error: HubError) => void;
  welcome: (info: { session: string; server: string; maxFrame: number }) => void;
}

/** One connection to a hub, shared by every model opened on it. */
export declare class HubClient {
  constructor(options?: HubClientOptions);
  readonly url: string;
  readonly clientId: string;
  readonly status: HubStatus;
  /** This connection's session id (as others see it in presence), null when offline. */
  readonly session: string | null;
  readonly isOpen: boolean;
  readonly models: ReadonlyMap<string, HubModel<any>>;
  /** Subscribes to a model (the same handle for the same name); await handle.ready. */
  open<T extends object = any>(name: string, options?: ModelOptions<T>): HubModel<T>;
  /** The article's BackendApi ({latestSnapshot, sendFlush}) for apps that drive their own Proxy. */
  backend<T extends object = any>(name: string): HubBackend<T>;
  connect(): void;
  /** Drops the connection and reconnects at once. */
  reconnect(): void;
  /** Closes for good; unacknowledged commands are lost (await model.settled() first). */
  close(): void;
  /**
   * Replaces the token (used by later connects). On an open connection it is sent in a new
   * hello at once: the hub keeps the connection past the old token's exp (renewal).
   * true: the hub took it; false: not connected; rejects ({code: "unauthorized"}) when the
   * hub refused it (the connection keeps its old identity).
   */
  setToken(token: string): Promise<boolean>;
  /** The next flush sequence number. */
  nextSeq(): number;
  on<E extends keyof HubClientEvents>(event: E, listener: HubClientEvents[E]): Unsubscribe;
  once<E extends keyof HubClientEvents>(event: E, listener: HubClientEvents[E]): Unsubscribe;
  off<E extends keyof HubClientEvents>(event: E, listener: HubClientEvents[E]): void;
}

export interface ChangeInfo {
  /** "local": this client's apply(); "remote": a push, an ack's sync or a snapshot. */
  source: "local" | "remote";
  /** The local command count after the change. */
  count: number;
}

export interface HubModelEvents<T extends object> {
  ready: (document: T) => void;
  change: (document: T, info: ChangeInfo) => void;
  flushed: (info: { seq: number; result: ApplyResult<T> }) => void;
  presence: (peers: ReadonlyMap<string, Record<string, unknown>>) => void;
  /** Local commands not yet acknowledged by the hub. */
  pending: (count: number) => void;
  error: (error: HubError) => void;
}

/** A live model: the reference Proxy, flushed in the background and kept current. */
export declare class HubModel<T extends object = any> {
  readonly name: string;
  readonly client: HubClient;
  /** Resolves with the document once the first snapshot arrived. */
  readonly ready: Promise<T>;
  /** The reference Proxy (read it; change it only through apply()). Null before ready. */
  readonly proxy: import("flushout").Proxy<T> | null;
  /** The count of the last state acknowledged by the hub. */
  readonly committed: number;
  /** Local commands not yet acknowledged (in flight or queued). */
  readonly pendingCount: number;
  /** True while a flush waits for its ack. */
  readonly flushing: boolean;
  /** Flushes (or subs) the hub refused with a retryAfterMs and that were sent again, unchanged, after it. */
  readonly retriedAfter: number;
  /** Other sessions' presence states, by session id. */
  readonly peers: ReadonlyMap<string, Record<string, unknown>>;
  /** The local document (do not mutate it); undefined before ready. */
  getDocument(): T;
  getCommandCount(): number;
  /**
   * Applies at once to the local document and queues for the hub. Takes the library's
   * Command (CommandAction.Delete = "detete"); "delete" is accepted as well. Throws before ready.
   */
  apply(command: Command<any> & { action: CommandAction.Create }): CreateResult;
  apply(command: Command<any> | WireDeleteCommand): HubResult;
  /** Sets (a map) or clears (null) this session's presence. */
  setPresence(state: Record<string, unknown> | null): void;
  /** Flushes now; resolves as settled(). */
  flush(): Promise<void>;
  /** Resolves when nothing is queued or in flight and the model is subscribed. */
  settled(): Promise<void>;
  /** Unsubscribes; unacknowledged commands are dropped. */
  close(): void;
  on<E extends keyof HubModelEvents<T>>(event: E, listener: HubModelEvents<T>[E]): Unsubscribe;
  once<E extends keyof HubModelEvents<T>>(event: E, listener: HubModelEvents<T>[E]): Unsubscribe;
  off<E extends keyof HubModelEvents<T>>(event: E, listener: HubModelEvents<T>[E]): void;
}

/** A Flushout backend ({latestSnapshot, sendFlush}) on a hub connection. */
export declare class HubBackend<T extends object = any> {
  readonly name: string;
  latestSnapshot(): Promise<Snapshot<T>>;
  /**
   * The model as it was after `at` commands. Rejects with an Error whose `code` is "gone"
   * (older than the hub's --history) or "bad_request" (past the model's count).
   */
  snapshotAt(at: number): Promise<Snapshot<T>>;
  /**
   * The commands [from, to) (to: default the model's count) as the hub applied them, in
   * the library's spelling. Rejects with code "gone" where history no longer reaches `from`.
   */
  history(from: number, to?: number): Promise<CompletionBatch>;
  /** Waits for a connection, and resends with the same seq after a reconnect. */
  sendFlush(batch: CompletionBatch): Promise<ApplyResult<T>>;
}
