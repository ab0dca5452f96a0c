// Types of flushout-hub-react (hand-written; the package ships plain ES modules).
import type {
  CommandAction,
  Command,
  CreateResult,
  HubClient,
  HubError,
  HubModel,
  HubResult,
  HubStatus,
  ModelOptions,
  WireDeleteCommand,
} from "flushout-hub-client";

/** Another session on the same model, and the state it shares (setPresence). */
export interface PresencePeer<P = Record<string, unknown>> {
  session: string;
  state: P;
}

/** The last error of the model or its connection. */
export type FlushoutError = HubError & {
  /** True for the connection's errors (connect, closed, ...): cleared by the next welcome. */
  connection: boolean;
  /** When it happened (Date.now()): tells a repeated error from the one already shown. */
  at: number;
};

export interface UseFlushout<T extends object = any, P = Record<string, unknown>> {
  /** A copy of the local document (a new object after each change); undefined before ready. */
  doc: T | undefined;
  /**
   * Applies at once and queues for the hub (see HubModel.apply). Before ready it applies
   * nothing and returns {isSuccess: false, error}.
   */
  apply: {
    (command: Command<any> & { action: CommandAction.Create }): CreateResult;
    (command: Command<any> | WireDeleteCommand): HubResult;
  };
  /** The connection: connecting | open | offline | closed. */
  status: HubStatus;
  /** Local commands not yet acknowledged by the hub. */
  pending: number;
  /** The other sessions on this model. */
  presence: ReadonlyArray<PresencePeer<P>>;
  /** This component's presence (null clears it; cleared on unmount). One per model and client. */
  setPresence(state: P | null): void;
  /** The first snapshot has arrived. */
  ready: boolean;
  /** The last error (e.g. code "rejected": the hub failed a command, with `errors`), or null. */
  error: FlushoutError | null;
  dismissError(): void;
  /** The underlying model handle (flush(), settled(), committed, ...). */
  model: HubModel<T>;
}

export interface UseFlushoutOptions<T extends object = any> extends ModelOptions<T> {
  /** The client to use; default: the FlushoutProvider's, else one on the page's hub. */
  client?: HubClient;
}

/** Subscribes the component to a model; re-renders it on every change. */
export declare function useFlushout<T extends object = any, P = Record<string, unknown>>(
  name: string,
  options?: UseFlushoutOptions<T>
): UseFlushout<T, P>;

/** The client useFlushout() uses here. */
export declare function useFlushoutClient(): HubClient;

/** Gives the components below it a HubClient (else they share one on the page's hub). */
export declare function FlushoutProvider(props: { client: HubClient; children?: any }): any;
