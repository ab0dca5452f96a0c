// timeline.jsx - the list's history: a slider over its command count that shows the list
// as it was after N commands, the commands around N (who made each, where the hub's rules
// stamp `by`), and the way back to live.
//
// It reads the hub's past through client.backend(name): snapshotAt(N) (the hub's `get`
// with `at`) for the state, history(from, to) for the steps. Past states never change, so
// both are cached for as long as the page lives (a count that goes down means the hub lost
// the list, e.g. a restarted in-memory hub: then the caches are dropped). Nothing is asked
// while the panel is closed. What the hub no longer keeps (older than its --history) comes
// back as error `gone`; the timeline learns from it how far back history reaches and says
// so rather than showing a stale or empty list.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { CommandAction } from "flushout-hub-client";

const STEPS_BEFORE = 4; // steps listed before the current one
const STEPS_AFTER = 3; // and after it
const LIVE_STEPS = 6; // the latest steps, in live mode
const PAGE = 40; // history read ahead and behind, so that stepping rarely waits
const SNAP_CACHE = 400; // past states kept (oldest dropped first)
const REST_MS = 60; // the slider must rest this long before its state is asked for

function remember(map, key, value, max) {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value);
}

function quote(text) {
  const s = String(text ?? "");
  return `“${s.length > 40 ? `${s.slice(0, 39)}…` : s}”`;
}

/** Who made a step and what it did, in words; `names` (id -> text) is updated as it goes. */
export function describeStep(completion, names) {
  const { command, createdId } = completion;
  const path = command.path || [];
  const props = command.props || {};
  const isTodo = path[0] === "todos";
  const id = command.action === CommandAction.Create ? createdId : path[1];
  const name = (tid) => (names.has(tid) ? quote(names.get(tid)) : `todo ${String(tid).slice(0, 8)}`);
  let what;
  if (command.action === CommandAction.Create && isTodo && path.length === 1) {
    what = `added ${quote(props.text)}`;
    names.set(createdId, props.text);
  } else if (command.action === CommandAction.Update && isTodo && path.length === 2) {
    const parts = [];
    if (typeof props.text === "string") {
      parts.push(names.has(id) ? `renamed ${name(id)} to ${quote(props.text)}` : `renamed a todo to ${quote(props.text)}`);
    }
    if (props.done === true) parts.push(`ticked ${typeof props.text === "string" ? "it" : name(id)}`);
    if (props.done === false) parts.push(`unticked ${typeof props.text === "string" ? "it" : name(id)}`);
    const other = Object.keys(props).filter((k) => k !== "text" && k !== "done");
    if (other.length || parts.length === 0) parts.push(`changed ${other.join(", ") || "nothing"} of ${name(id)}`);
    what = parts.join(", ");
    if (typeof props.text === "string") names.set(id, props.text);
  } else if (command.action === CommandAction.Delete && isTodo && path.length === 2) {
    what = `deleted ${name(id)}`;
  } else {
    const verb = command.action === CommandAction.Delete ? "delete" : command.action;
    what = `${verb} ${path.join("/") || "the document"}${createdId ? `/${createdId}` : ""}`;
  }
  // `by` and `createdAt` are in the command where the hub's rules stamped them (rules.lua,
  // on creates), or where the page sent them (an open hub without rules).
  const by = command.action === CommandAction.Create && typeof props.by === "string" && props.by ? props.by : null;
  const when = command.action === CommandAction.Create && Number.isFinite(props.createdAt) ? props.createdAt : null;
  return { what, by, when, id };
}

/**
 * The timeline's state for `model` (a HubModel). `enabled`: the panel is open (else
 * nothing is fetched). Returns {live, at (null: live), setAt, view, steps, changedId,
 * goneBelow}; view is {mode: "live"} or {mode: "past", at, doc, shownAt, loading, gone,
 * error}.
 */
export function useTimeline(model, enabled) {
  const backend = useMemo(() => model.client.backend(model.name), [model]);
  const live = model.proxy ? model.committed : 0; // the hub's count (the page re-renders on each change)
  const [at, setAtState] = useState(null);
  const [version, bump] = useReducer((x) => x + 1, 0);
  const snaps = useRef(new Map()); // N -> {doc} | {gone: message}
  const steps = useRef(new Map()); // command index -> CommandCompletion
  const goneBelow = useRef(0); // states and steps before this are no longer kept (as learnt)
  const shown = useRef(null); // the last past state that arrived: shown while the next loads
  const failed = useRef(null); // {key, message}: a request that failed otherwise than gone
  const highest = useRef(0);

  if (live < highest.current) {
    // The hub lost the list (another history now): forget the old one.
    snaps.current.clear();
    steps.current.clear();
    goneBelow.current = 0;
    shown.current = null;
  }
  highest.current = live;

  const target = enabled && at !== null && at < live ? at : null;
  const setAt = useCallback((n) => setAtState(n === null ? null : Math.max(0, Math.floor(n))), []);

  // At (or past) the live count is live: from then on the slider follows new commands.
  useEffect(() => {
    if (at !== null && (at >= live || !enabled)) setAtState(null);
  }, [at, live, enabled]);

  // The state after `target` commands, once the slider rests there.
  useEffect(() => {
    if (target === null || snaps.current.has(target)) return undefined;
    let tries = 0;
    let timer = null;
    const ask = () => {
      if (failed.current && failed.current.key === `snap:${target}`) failed.current = null; // asking again
      backend.snapshotAt(target).then(
        (s) => {
          remember(snaps.current, target, { doc: s.document }, SNAP_CACHE);
          bump();
        },
        (e) => {
          // "not durable yet; retry": a state the hub has applied but not stored yet.
          if (e.code === "gone" && /retry/.test(e.message) && tries++ < 10) {
            timer = setTimeout(ask, 200);
            return;
          }
          if (e.code === "gone") {
            remember(snaps.current, target, { gone: String(e.message).replace(/^gone: /, "") }, SNAP_CACHE);
            goneBelow.current = Math.max(goneBelow.current, target + 1);
          } else {
            failed.current = { key: `snap:${target}`, message: `${e.code || "error"}: ${e.message}` };
          }
          bump();
        }
      );
    };
    timer = setTimeout(ask, REST_MS);
    return () => clearTimeout(timer);
  }, [target, backend]);

  // The steps around the current one (the latest ones when live).
  const [lo, hi] = target === null ? [Math.max(0, live - LIVE_STEPS), live] : [Math.max(0, target - STEPS_BEFORE - 1), Math.min(live, target + STEPS_AFTER)];
  useEffect(() => {
    if (!enabled || hi <= lo) return undefined;
    const key = `steps:${lo}:${hi}:${live}`;
    if (failed.current && failed.current.key === key) return undefined;
    let first = -1;
    let end = -1;
    for (let i = Math.max(lo, goneBelow.current); i < hi; i++) {
      if (steps.current.has(i)) continue;
      if (first < 0) first = i;
      end = i + 1;
    }
    if (first < 0) return undefined;
    let stop = false;
    const timer = setTimeout(async () => {
      // A page around the window first; if its start is gone, just the window; then give up
      // on the window's first step (history is a suffix: everything before it is gone too).
      const ranges = [
        [Math.max(goneBelow.current, first - PAGE), Math.min(live, end + PAGE)],
        [first, end],
      ];
      for (const [from, to] of ranges) {
        try {
          const b = await backend.history(from, to);
          b.completions.forEach((c, k) => steps.current.set(b.from + k, c));
          if (!stop) bump();
          return;
        } catch (e) {
          if (e.code !== "gone") {
            failed.current = { key, message: `${e.code || "error"}: ${e.message}` };
            if (!stop) bump();
            return;
          }
        }
      }
      goneBelow.current = Math.max(goneBelow.current, first + 1);
      if (!stop) bump();
    }, target === null ? 0 : REST_MS);
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [enabled, lo, hi, live, backend, version, target]);

  // Every known step described, in order (names carry over from step to step).
  const described = useMemo(() => {
    // Todos created before the steps known here are named as the live list has them.
    const names = new Map(Object.entries(model.getDocument()?.todos || {}).map(([id, t]) => [id, t && t.text]));
    const out = new Map();
    for (const i of [...steps.current.keys()].sort((a, b) => a - b)) out.set(i, describeStep(steps.current.get(i), names));
    return out;
  }, [version, live, model]);

  const list = [];
  for (let i = lo; i < hi; i++) {
    const d = described.get(i);
    list.push({ n: i + 1, gone: i < goneBelow.current && !d, ...(d || {}), current: target !== null && i + 1 === target });
  }

  let view = { mode: "live" };
  if (target !== null) {
    const s = snaps.current.get(target);
    if (s && s.doc) shown.current = { at: target, doc: s.doc };
    const err = failed.current && failed.current.key === `snap:${target}` ? failed.current.message : null;
    view = {
      mode: "past",
      at: target,
      doc: shown.current ? shown.current.doc : undefined,
      shownAt: shown.current ? shown.current.at : null,
      loading: !s && !err,
      gone: s && s.gone ? s.gone : null,
      error: err,
    };
  }
  const changed = target !== null && target > 0 ? described.get(target - 1) : null;
  return { live, at: target, setAt, view, steps: list, changedId: changed ? changed.id : null, goneBelow: goneBelow.current };
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** The slider, the step buttons, the way back to live, and the steps around the current one. */
export function TimelineBar({ tl }) {
  const { live, at, setAt, steps } = tl;
  const pos = at === null ? live : at;
  const pct = (n) => (live > 0 ? `${((100 * Math.min(n, live)) / live).toFixed(2)}%` : "0%");
  const go = (n) => setAt(n >= live ? null : n);
  return (
    <section className="timeline" id="timeline" data-mode={at === null ? "live" : "past"} aria-label="History of this list">
      <div className="tl-row">
        <button type="button" id="timeline-back" className="tl-step" title="One step back" aria-label="One step back" disabled={pos <= 0} onClick={() => go(pos - 1)}>
          ‹
        </button>
        <input
          type="range"
          id="timeline-slider"
          className={at === null ? "live" : "past"}
          min={0}
          max={Math.max(live, 0)}
          step={1}
          value={pos}
          disabled={live === 0}
          aria-label="Commands applied"
          aria-valuetext={at === null ? `live, ${live} commands` : `after ${at} of ${live} commands`}
          style={{ "--gone": pct(tl.goneBelow), "--pos": pct(pos) }}
          onChange={(e) => go(Number(e.target.value))}
        />
        <button type="button" id="timeline-fwd" className="tl-step" title="One step forward" aria-label="One step forward" disabled={at === null} onClick={() => go(pos + 1)}>
          ›
        </button>
        <span className="tl-label" id="timeline-label" aria-live="polite">
          {at === null ? `Live · ${live} command${live === 1 ? "" : "s"}` : `After ${at} of ${live}`}
        </span>
        <button type="button" id="timeline-live" className="tl-live" disabled={at === null} onClick={() => setAt(null)}>
          Back to live
        </button>
      </div>
      {steps.length > 0 ? (
        <ol className="tl-steps" id="timeline-steps" aria-label={at === null ? "Latest changes" : "Changes around this point"}>
          {steps.map((s) => (
            <li key={s.n} className={["tl-stepitem", s.current ? "current" : "", s.n > pos ? "after" : "", s.gone ? "gone" : ""].filter(Boolean).join(" ")} data-step={s.n} aria-current={s.current ? "step" : undefined}>
              <button type="button" className="tl-jump" title={`Show the list after step ${s.n}`} onClick={() => go(s.n)}>
                <span className="tl-n">{s.n}</span>
                {s.gone ? (
                  <span className="tl-what">no longer kept</span>
                ) : s.what ? (
                  <>
                    {s.by ? <span className="tl-by">{s.by}</span> : null}
                    <span className="tl-what">{s.what}</span>
                    {s.when ? (
                      <time className="tl-when" dateTime={new Date(s.when).toISOString()}>
                        {timeOf(s.when)}
                      </time>
                    ) : null}
                  </>
                ) : (
                  <span className="tl-what loading">…</span>
                )}
              </button>
            </li>
          ))}
        </ol>
      ) : null}
    </section>
  );
}
