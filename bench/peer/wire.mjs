// wire.mjs - the boundary between the wire contract (shared/PROTOCOL.md) and the
// reference library: request validation, "delete" <-> "detete", nil-as-absent.
//
// Validation is what a careful Node service does with untrusted input (types of the fields
// it uses, so that the Master never throws on garbage), not the hub's full decoder: ext
// types, bin values and invalid UTF-8 are not rejected here (see README.md).
import { CommandAction } from 'flushout';

export const LIB_DELETE = CommandAction.Delete; // "detete", the reference's spelling

const MODEL_RE = /^[A-Za-z0-9._:-]{1,200}$/;

export class BadRequest extends Error {}

// A MessagePack map as @msgpack/msgpack decodes it: a plain object.
export function isMap(v) {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

export function isUint(v) {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function bad(field, why) {
  throw new BadRequest(`${field}: ${why}`);
}

export function checkModel(msg) {
  const m = msg.model;
  if (m == null) bad('model', 'missing');
  if (typeof m !== 'string') bad('model', 'expected str');
  if (!MODEL_RE.test(m)) bad('model', 'must be 1-200 bytes of [A-Za-z0-9._:-]');
  return m;
}

export function checkUint(msg, key, required) {
  const v = msg[key];
  if (v == null) {
    if (required) bad(key, 'missing');
    return undefined;
  }
  if (!isUint(v)) bad(key, 'expected uint');
  return v;
}

export function checkClient(msg) {
  const c = msg.client;
  if (c == null) bad('client', 'missing');
  if (typeof c !== 'string') bad('client', 'expected str');
  const n = Buffer.byteLength(c);
  if (n < 1 || n > 64 || c.includes('\0')) bad('client', 'must be 1-64 bytes without NUL');
  return c;
}

function checkPath(p, field) {
  if (!Array.isArray(p)) bad(field, 'expected array');
  for (let i = 0; i < p.length; i++) {
    if (typeof p[i] !== 'string') bad(`${field}[${i}]`, 'expected str');
  }
}

// Validates msg.batch in place and converts it to the library's form: "delete" becomes
// "detete", nil optional fields are removed (the reference tests some with !== undefined).
export function batchToLib(msg) {
  const b = msg.batch;
  if (b == null) bad('batch', 'missing');
  if (!isMap(b)) bad('batch', 'expected map');
  if (!isUint(b.from)) bad('batch.from', b.from == null ? 'missing' : 'expected uint');
  const cs = b.completions;
  if (!Array.isArray(cs)) bad('batch.completions', cs == null ? 'missing' : 'expected array');
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i];
    if (!isMap(c)) bad(`batch.completions[${i}]`, 'expected map');
    const cmd = c.command;
    if (!isMap(cmd)) bad(`batch.completions[${i}].command`, cmd == null ? 'missing' : 'expected map');
    const a = cmd.action;
    if (a === 'delete') cmd.action = LIB_DELETE;
    else if (a !== 'create' && a !== 'update' && a !== LIB_DELETE)
      bad(`batch.completions[${i}].command.action`, a == null ? 'missing' : 'unknown action');
    if (cmd.path != null) checkPath(cmd.path, `batch.completions[${i}].command.path`);
    else if (cmd.path === null) delete cmd.path;
    if (cmd.props != null) {
      if (!isMap(cmd.props)) bad(`batch.completions[${i}].command.props`, 'expected map');
    } else if (cmd.props === null) delete cmd.props;
    if (cmd.parentDefault != null) {
      if (!isMap(cmd.parentDefault)) bad(`batch.completions[${i}].command.parentDefault`, 'expected map');
    } else if (cmd.parentDefault === null) delete cmd.parentDefault;
    if (c.createdId != null) {
      if (typeof c.createdId !== 'string') bad(`batch.completions[${i}].createdId`, 'expected str');
    } else if (c.createdId === null) delete c.createdId;
  }
  return b;
}

// Back to the wire's spelling, in place. The master hands back the caller's own command
// objects (or copies of them), so this runs once per applied completion. `rewritten`: the
// master built this list; drop its undefined createdIds (the encoder would write nil).
export function completionsToWire(cs, rewritten) {
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i];
    const cmd = c.command;
    if (cmd.action === LIB_DELETE) cmd.action = 'delete';
    if (rewritten) {
      if (c.createdId === undefined) delete c.createdId;
      for (const k in cmd) if (cmd[k] === undefined) delete cmd[k];
    }
  }
  return cs;
}

export function errorsToWire(errs) {
  if (errs) for (const e of errs) if (e.action === LIB_DELETE) e.action = 'delete';
  return errs;
}
