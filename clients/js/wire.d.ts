// Types of flushout-hub-client/wire: the flushout.v1 frame codec and the Delete spelling map.
import type { Command, CompletionBatch, Sync, ApplyResult } from "flushout";
export type { ApplyResult };

/** The WebSocket subprotocol of the hub. */
export declare const SUBPROTOCOL: "flushout.v1";
/** Delete as the reference library spells it (CommandAction.Delete). */
export declare const LIB_DELETE: "detete";
/** Delete as the wire spells it. */
export declare const WIRE_DELETE: "delete";

/** A message as it travels: a map with a `t` (type) key; see the hub's PROTOCOL.md. */
export interface WireMessage {
  t: string;
  rid?: number;
  model?: string;
  [key: string]: unknown;
}

/** A Command on the wire: action is "create" | "update" | "delete". */
export interface WireCommand {
  action: "create" | "update" | "delete";
  path?: string[];
  props?: Record<string, unknown>;
  parentDefault?: Record<string, unknown>;
}

export interface WireCompletionBatch {
  from: number;
  completions: { command: WireCommand; createdId?: string }[];
}

/** Encodes one message into a binary frame (undefined fields are left out). */
export declare function encodeFrame(msg: WireMessage): Uint8Array;
/** Decodes one binary frame; throws when it is not a MessagePack map. */
export declare function decodeFrame(data: ArrayBuffer | Uint8Array): WireMessage;

export declare function commandToWire(command: Command): WireCommand;
export declare function commandFromWire(command: WireCommand): Command;
export declare function batchToWire(batch: CompletionBatch): WireCompletionBatch;
export declare function batchFromWire(batch: WireCompletionBatch): CompletionBatch;
export declare function syncToWire<T extends object>(sync: Sync<T> | undefined): unknown;
export declare function syncFromWire<T extends object>(sync: unknown): Sync<T> | undefined;
export declare function resultToWire<T extends object>(result: ApplyResult<T>): unknown;
export declare function resultFromWire<T extends object>(result: unknown): ApplyResult<T>;
