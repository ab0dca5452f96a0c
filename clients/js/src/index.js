// flushout-hub-client: the reference Flushout Proxy (npm `flushout`, unmodified) kept in
// sync with a flushout-hub over WebSocket (subprotocol flushout.v1, MessagePack frames).
import flushout from "flushout";

export { HubClient } from "./client.js";
export { HubModel } from "./model.js";
export { HubBackend } from "./backend.js";
export {
  SUBPROTOCOL,
  LIB_DELETE,
  WIRE_DELETE,
  encodeFrame,
  decodeFrame,
  commandToWire,
  commandFromWire,
  batchToWire,
  batchFromWire,
  syncToWire,
  syncFromWire,
  resultToWire,
  resultFromWire,
} from "./wire.js";

// The reference library, re-exported so that an app needs one import.
export const Proxy = flushout.Proxy;
export const Master = flushout.Master;
export const PathMapper = flushout.PathMapper;
export const CommandAction = flushout.CommandAction;
