// wire.js - the flushout.v1 wire format: one MessagePack map per binary WebSocket frame,
// and the mapping between the reference library's Delete spelling ("detete") and the
// wire's ("delete"). Pure functions, no I/O.
import { Encoder, Decoder } from "@msgpack/msgpack";

export const SUBPROTOCOL = "flushout.v1";

/** The reference library's enum value for Delete (flushout 1.1.x spells it so). */
export const LIB_DELETE = "detete";
/** The wire's spelling of Delete. */
export const WIRE_DELETE = "delete";

// `undefined` fields are left out, as JSON.stringify does (the reference copies props with
// JSON, so an undefined prop never exists there either); the hub would read nil as null.
const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

/** Encodes one message (a plain object with a `t` key) into a frame. */
export function encodeFrame(msg) {
  return encoder.encode(msg);
}

/** Decodes one frame (ArrayBuffer, Uint8Array or Node Buffer) into a message. */
export function decodeFrame(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const msg = decoder.decode(bytes);
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
    throw new Error("frame is not a MessagePack map");
  }
  return msg;
}

function mapAction(action, from, to) {
  return action === from ? to : action;
}

/** A library Command as it goes on the wire (a shallow copy; "detete" becomes "delete"). */
export function commandToWire(command) {
  const out = { action: mapAction(command.action, LIB_DELETE, WIRE_DELETE) };
  if (command.path !== undefined && command.path !== null && command.path.length > 0) {
    out.path = command.path;
  }
  if (command.props !== undefined && command.props !== null) out.props = command.props;
  if (command.parentDefault !== undefined && command.parentDefault !== null) {
    out.parentDefault = command.parentDefault;
  }
  return out;
}

/** A wire Command as the library wants it ("delete" becomes "detete"; nil fields dropped). */
export function commandFromWire(command) {
  const out = { action: mapAction(command.action, WIRE_DELETE, LIB_DELETE) };
  if (Array.isArray(command.path)) out.path = command.path;
  if (command.props !== undefined && command.props !== null) out.props = command.props;
  if (command.parentDefault !== undefined && command.parentDefault !== null) {
    out.parentDefault = command.parentDefault;
  }
  return out;
}

function completionToWire(c) {
  const out = { command: commandToWire(c.command) };
  if (c.createdId !== undefined && c.createdId !== null) out.createdId = c.createdId;
  return out;
}

function completionFromWire(c) {
  const out = { command: commandFromWire(c.command) };
  if (c.createdId !== undefined && c.createdId !== null) out.createdId = c.createdId;
  return out;
}

/** CompletionBatch, library → wire. */
export function batchToWire(batch) {
  return { from: batch.from, completions: batch.completions.map(completionToWire) };
}

/** CompletionBatch, wire → library. */
export function batchFromWire(batch) {
  return { from: batch.from, completions: (batch.completions || []).map(completionFromWire) };
}

/** Sync, wire → library (undefined stays undefined). */
export function syncFromWire(sync) {
  if (sync === undefined || sync === null) return undefined;
  const out = { isPartial: sync.isPartial === true };
  if (sync.mappedPaths !== undefined && sync.mappedPaths !== null) {
    out.mappedPaths = sync.mappedPaths;
  }
  if (out.isPartial) out.diff = batchFromWire(sync.diff);
  else out.latest = sync.latest;
  return out;
}

/** Sync, library → wire (for tests and fake masters). */
export function syncToWire(sync) {
  if (sync === undefined) return undefined;
  const out = { isPartial: sync.isPartial };
  if (sync.mappedPaths !== undefined) out.mappedPaths = sync.mappedPaths;
  if (sync.isPartial) out.diff = batchToWire(sync.diff);
  else out.latest = sync.latest;
  return out;
}

/** ApplyResult, wire → library. */
export function resultFromWire(result) {
  const out = { applied: batchFromWire(result.applied) };
  const sync = syncFromWire(result.sync);
  if (sync) out.sync = sync;
  if (Array.isArray(result.errors) && result.errors.length > 0) {
    out.errors = result.errors.map((e) => ({
      action: mapAction(e.action, WIRE_DELETE, LIB_DELETE),
      path: e.path,
      errorMessage: e.errorMessage,
    }));
  }
  return out;
}

/** ApplyResult, library → wire (for tests and fake masters). */
export function resultToWire(result) {
  const out = { applied: batchToWire(result.applied) };
  if (result.sync) out.sync = syncToWire(result.sync);
  if (result.errors && result.errors.length > 0) {
    out.errors = result.errors.map((e) => ({
      action: mapAction(e.action, LIB_DELETE, WIRE_DELETE),
      path: e.path,
      errorMessage: e.errorMessage,
    }));
  }
  return out;
}
