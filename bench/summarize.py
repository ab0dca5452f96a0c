#!/usr/bin/env python3
"""summarize.py DIR - the table and the issue-8 targets of one bench run.

Reads what bench/run.sh, bench/sweep.sh and bench/memory.sh left in DIR (default
build/bench): DIR/runs/*.json (one flushout-bench JSON per run; floor-*.json from fo-floor;
d2-*-search.json; strace-*.json), DIR/run-meta.json, DIR/sweep.json, DIR/memory.json.
Writes DIR/results.json (medians, ratios, fractions of the floor, targets) and
DIR/summary.txt, and prints the summary. Each script calls it when it ends, so the summary
holds whatever has been measured; a part that is missing shows as "n/a", and parts older
than run.sh's results say when they were taken.
"""
import glob
import json
import os
import re
import statistics
import sys
import time

out = sys.argv[1] if len(sys.argv) > 1 else "build/bench"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


meta = load(f"{out}/run-meta.json") or {}
quick = meta.get("quick", False)
runs = meta.get("runs_per_scenario", 0)
duration = meta.get("duration_s", 0)
cold_n = meta.get("cold_models", 0)
elapsed = meta.get("elapsed_s", 0)


def runs_of(scn, kind, store="memory"):
    return [j for j in (load(p) for p in sorted(glob.glob(f"{out}/runs/{scn}-{kind}-{store}-*.json"))) if j]


FIELDS = ["flushes_per_sec", "commands_per_sec", "pushes_per_sec", "ack_p50_ms", "ack_p99_ms",
          "push_p99_ms", "frames_in_per_sec", "frames_out_per_sec", "errors", "hub_cpu_pct",
          "bench_cpu_pct", "hub_rss_kb", "hub_rss_per_conn_bytes", "hub_frames_out",
          "hub_socket_writes", "hub_loop_turns", "hub_write_turns", "hub_writable_requests",
          "hub_partial_writes"]


def med(js):
    if not js:
        return None
    m = {"runs": len(js)}
    for f in FIELDS:
        v = [j[f] for j in js if isinstance(j.get(f), (int, float))]
        if v:
            m[f] = statistics.median_low(sorted(v)) if len(v) % 2 == 0 else statistics.median(v)
    return m


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def ratio(a, b):
    return round(a / b, 3) if num(a) and num(b) and b else None


# ---- the floor: every fo-floor run of this bench run (start and end), median per mode
floor_runs, floor_cpu = {1: [], 10: []}, []
for p in sorted(glob.glob(f"{out}/runs/floor-*.json")):
    j = load(p)
    for m in (j or {}).get("modes", []):
        for r in m.get("runs", []):
            floor_runs.setdefault(m["frames_per_send"], []).append(r["frames_per_sec"])
            floor_cpu.append(r.get("sender_cpu_pct", 0))
floor = {k: (statistics.median(v) if v else None) for k, v in floor_runs.items()}
floor1, floor10 = floor.get(1), floor.get(10)


def floor_paired(pattern):
    """1-frame floor runs taken beside scenario d's rounds (floord-R / flooru-R.json)."""
    v = [r["frames_per_sec"] for p in sorted(glob.glob(f"{out}/runs/{pattern}"))
         for m in ((load(p) or {}).get("modes") or []) if m.get("frames_per_send") == 1
         for r in m.get("runs", [])]
    return (statistics.median(v) if v else None), v


floor_d, floor_d_runs = floor_paired("floord-*.json")   # one send() per frame
floor_u, floor_u_runs = floor_paired("flooru-*.json")   # the same, one io_uring submission a round

desc = {
    "a": "100 conns, 10 models, K=1",
    "b": "100 conns, 10 models, K=10",
    "c": "1000 conns, 1000 models, K=1",
    "d": "fan-out 1 writer + 1000 subs",
    "d2": "d open loop pipelined, max",
    "e": "10k idle connections",
}
res = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick,
       "runs_per_scenario": runs, "duration_s": duration, "elapsed_s": elapsed,
       "loadavg": open("/proc/loadavg").read().split()[:3], "nproc": os.cpu_count(),
       "floor": {"frames_per_sec_1_per_send": floor1, "frames_per_sec_10_per_send": floor10,
                 "runs_1_per_send": floor_runs.get(1), "runs_10_per_send": floor_runs.get(10),
                 "beside_d_1_per_send": floor_d, "beside_d_runs": floor_d_runs,
                 "beside_d_io_uring": floor_u, "beside_d_io_uring_runs": floor_u_runs},
       "scenarios": {}}


def fractions(r, m):
    if m and floor1:
        fr = m.get("frames_in_per_sec")  # frames the server sent (the generator's "in")
        r["frames_fraction_of_floor"] = ratio(fr, floor1)
        r["pushes_fraction_of_floor"] = ratio(m.get("pushes_per_sec"), floor1)


for s in ["a", "b", "c", "d", "e"]:
    hub, peer = med(runs_of(s, "hub")), med(runs_of(s, "peer"))
    if not hub and not peer:
        continue
    r = {"desc": desc[s], "hub": hub, "peer": peer}
    if s != "e":
        r["hub_floor"], r["peer_floor"] = {}, {}
        fractions(r["hub_floor"], hub)
        fractions(r["peer_floor"], peer)
    if hub and peer:
        if s == "e":
            r["rss_per_conn_ratio_hub_over_peer"] = ratio(hub.get("hub_rss_per_conn_bytes"), peer.get("hub_rss_per_conn_bytes"))
        else:
            r["flushes_ratio_hub_over_peer"] = ratio(hub.get("flushes_per_sec"), peer.get("flushes_per_sec"))
            r["pushes_ratio_hub_over_peer"] = ratio(hub.get("pushes_per_sec"), peer.get("pushes_per_sec"))
            r["ack_p99_ratio_hub_over_peer"] = ratio(hub.get("ack_p99_ms"), peer.get("ack_p99_ms"))
    res["scenarios"][s] = r

# d2: the best sustained step of each server's search
d2 = {}
for kind in ("hub", "peer"):
    j = load(f"{out}/runs/d2-{kind}-search.json")
    if j:
        d2[kind] = j
if d2:
    h, p = d2.get("hub", {}).get("best_json"), d2.get("peer", {}).get("best_json")
    r = {"desc": desc["d2"], "hub": med([h]) if h else None, "peer": med([p]) if p else None,
         "search": {k: {"best_rate": v.get("best_rate"), "steps": v.get("steps")} for k, v in d2.items()},
         "hub_floor": {}, "peer_floor": {}}
    fractions(r["hub_floor"], r["hub"])
    fractions(r["peer_floor"], r["peer"])
    for k in ("hub", "peer"):
        if r[k] and floor10:
            r[f"{k}_floor"]["pushes_fraction_of_floor10"] = ratio(r[k].get("pushes_per_sec"), floor10)
    if h and p:
        r["flushes_ratio_hub_over_peer"] = ratio(h.get("flushes_per_sec"), p.get("flushes_per_sec"))
        r["pushes_ratio_hub_over_peer"] = ratio(h.get("pushes_per_sec"), p.get("pushes_per_sec"))
        r["ack_p99_ratio_hub_over_peer"] = ratio(h.get("ack_p99_ms"), p.get("ack_p99_ms"))
    res["scenarios"]["d2"] = r

# f's memory-store runs alternate with its SQLite runs (run.sh); older result dirs have
# only scenario a's.
mem = med(runs_of("f", "hub") or runs_of("a", "hub"))
sql = med(runs_of("f", "hub", "sqlite"))
if sql:
    res["scenarios"]["f"] = {"desc": "hub: sqlite (fsync) vs memory, shape of a", "memory": mem, "sqlite": sql,
                             "flushes_ratio_sqlite_over_memory": ratio(sql.get("flushes_per_sec"), (mem or {}).get("flushes_per_sec")),
                             "ack_p99_ratio_sqlite_over_memory": ratio(sql.get("ack_p99_ms"), (mem or {}).get("ack_p99_ms"))}

strace = {k: load(f"{out}/runs/strace-{k}.json") for k in ("hub", "peer")}
strace = {k: v for k, v in strace.items() if v}
if strace:
    res["strace_d"] = strace


def ready_s(tag):
    try:
        txt = open(f"{out}/runs/{tag}.err").read()
    except OSError:
        return None
    m = re.findall(r"(\d+) of (\d+) connections ready \((\d+) failed\) in ([0-9.]+) s", txt)
    return (int(m[-1][0]), float(m[-1][3])) if m else None


g = {}
for phase in ("create", "warm", "cold"):
    j = load(f"{out}/runs/g-hub-sqlite-{phase}.json")
    rd = ready_s(f"g-hub-sqlite-{phase}")
    if not j or not rd:
        continue
    ready, secs = rd
    first_ack = (j.get("ack_max_ms") or 0) / 1000.0
    total = secs + first_ack
    g[phase] = {"models": cold_n, "connections_ready": ready, "connect_sub_s": round(secs, 3),
                "slowest_first_ack_s": round(first_ack, 4), "total_s": round(total, 3),
                "models_per_sec": round(ready / total, 1) if total else None,
                "errors": j.get("errors"), "flushes_per_sec": j.get("flushes_per_sec")}
if g:
    if "cold" in g and "warm" in g:
        extra = g["cold"]["total_s"] - g["warm"]["total_s"]
        g["cold_minus_warm_s"] = round(extra, 3)
        g["load_models_per_sec"] = round(cold_n / extra, 1) if extra > 0 else None
    g["desc"] = f"cold start: first flush acked on each of {cold_n} models on disk"
    res["scenarios"]["g"] = g

sweep = load(f"{out}/sweep.json")
memory = load(f"{out}/memory.json")


def age(path):
    try:
        return time.strftime("%H:%M UTC", time.gmtime(os.path.getmtime(path)))
    except OSError:
        return "?"


# ---- errors the generator reported (runs that count: not the d2 steps that failed, which
# end with flushes unacked by design)
err_total, err_runs = 0, 0
for p in glob.glob(f"{out}/runs/*.json"):
    b = os.path.basename(p)
    if b.startswith(("floor-", "strace-hub.", "strace-peer.", "d2-")) or b.endswith("-search.json"):
        continue
    j = load(p)
    if j and num(j.get("errors")):
        err_total += j["errors"]
        err_runs += 1
for v in d2.values():
    for st in v.get("steps", []):
        if st.get("sustained"):
            j = load(f"{out}/runs/d2-{v['server']}-rate-{st['rate']}.json")
            if j and num(j.get("errors")):
                err_total += j["errors"]
                err_runs += 1

# ---- the targets (issue 8): (label, measured value, formatted, verdict)
T = []


def target(label, value, ok, fmt):
    if value is None:
        T.append((label, "n/a", "n/a"))
    else:
        T.append((label, fmt(value), "PASS" if ok(value) else "FAIL"))


fx = lambda v: f"{v:.2f}x"
sc = res["scenarios"]
for s, want in (("a", 4), ("b", 5), ("c", 3)):
    target(f"{s}: hub/peer flushes/s >= {want}x", (sc.get(s) or {}).get("flushes_ratio_hub_over_peer"),
           lambda v, w=want: v >= w, fx)
target("no generator errors", err_total if err_runs else None, lambda v: v == 0,
       lambda v: f"{v:.0f} in {err_runs} runs")
dh = ((sc.get("d") or {}).get("hub") or {})
# Against the floor runs taken beside d's rounds when there are (this host's speed drifts
# within minutes), else against the start/end floor.
dfloor, dfloor_src = (floor_d, "beside d") if floor_d else (floor1, "start/end")
target(f"d: hub pushes/s >= 0.8 of the floor (1 frame/send, {dfloor_src})",
       ratio(dh.get("pushes_per_sec"), dfloor), lambda v: v >= 0.8,
       lambda v: f"{v:.2f} ({dh.get('pushes_per_sec', 0):,.0f} / {dfloor:,.0f})")
target("d: hub/peer pushes/s >= 1.2x", (sc.get("d") or {}).get("pushes_ratio_hub_over_peer"),
       lambda v: v >= 1.2, fx)
d2h = ((sc.get("d2") or {}).get("hub") or {}).get("pushes_per_sec")
d2p = ((sc.get("d2") or {}).get("peer") or {}).get("pushes_per_sec")
target("d2: hub/peer highest sustained pushes/s >= 3x", ratio(d2h, d2p), lambda v: v >= 3,
       lambda v: f"{v:.2f}x ({d2h:,.0f} / {d2p:,.0f})")
sh = strace.get("hub") or {}
target("d: hub epoll_ctl per frame sent <= 0.05 (strace)", sh.get("epoll_ctl_per_frame"),
       lambda v: v <= 0.05, lambda v: f"{v:.3f}")
# Socket writes per connection per loop turn: the syscalls under strace over the hub's
# write turns; without strace, the hub's own packed-write count over its write turns.
dmh = ((sc.get("d") or {}).get("hub") or {})
wpt, wsrc = sh.get("writes_per_conn_turn"), sh.get("writes_from", "strace")
if wpt is None and num(dmh.get("hub_write_turns")) and dmh["hub_write_turns"] and num(dmh.get("hub_socket_writes")):
    wpt, wsrc = dmh["hub_socket_writes"] / dmh["hub_write_turns"], "/metrics"
target("d: hub socket writes per conn per loop turn <= 1.1", wpt,
       lambda v: v <= 1.1, lambda v: f"{v:.3f} ({wsrc})")
half = (sweep or {}).get("hub_at_half_peer_max")
target(f"sweep: hub ack p99 <= 1 ms at half the peer's max rate{' (' + age(out + '/sweep.json') + ')' if sweep else ''}",
       half.get("ack_p99_ms") if half else None, lambda v: v <= 1.0,
       lambda v: f"{v:.3f} ms at {half['target_rate']:,}/s" + (
           " (median run of " + ", ".join("n/a" if x is None else f"{x:.3f}" for x in reps) + ")"
           if (reps := (sweep or {}).get("hub_at_half_runs_p99_ms")) else ""))
target("f: sqlite+fsync / memory flushes/s >= 0.6x",
       (sc.get("f") or {}).get("flushes_ratio_sqlite_over_memory"), lambda v: v >= 0.6, fx)
mrun = {r["store"]: r for r in (memory or {}).get("runs", [])}
ms_ = mrun.get("sqlite") or {}
target(f"memory: hub peak RSS <= budget + 100 MB (sqlite){' (' + age(out + '/memory.json') + ')' if memory else ''}",
       ms_.get("peak_rss_kb"), lambda v: v <= ms_["limit_kb"],
       lambda v: f"{v / 1024:,.0f} MB <= {ms_['limit_kb'] / 1024:,.0f} MB")
res["targets"] = [{"target": a, "measured": b, "verdict": c} for a, b, c in T]



# ---- the summary
def n(v, fmt="{:,.0f}"):
    return fmt.format(v) if num(v) else "-"


def x(v):
    return f"{v:.2f}x" if num(v) else "-"


L = []
L.append(f"flushout bench ({'quick' if quick else 'full'}: {runs} run(s), {duration:g}s windows, medians; "
         f"load avg {' '.join(res['loadavg'])}; {elapsed}s; {res['when']})")
L.append("")
if floor1 or floor10:
    L.append(f"floor (fo-floor, 1000 loopback sockets, 60 B frames, sender on the server's CPU): "
             f"1 frame/send {n(floor1)} frames/s {n(min(floor_runs[1]) if floor_runs[1] else None)}-{n(max(floor_runs[1]) if floor_runs[1] else None)}; "
             f"10 frames/send {n(floor10)} frames/s (median of {len(floor_runs[1])} runs; sender CPU "
             f"{n(statistics.median(floor_cpu) if floor_cpu else None)}%)")
    if floor_d or floor_u:
        dph = ((sc.get("d") or {}).get("hub") or {}).get("pushes_per_sec")
        L.append(f"floor beside d's rounds, 1 frame/send: one send() each {n(floor_d)} frames/s "
                 f"{[round(v) for v in floor_d_runs]}; one io_uring submission a round {n(floor_u)} "
                 f"{[round(v) for v in floor_u_runs]}; hub d = {n(ratio(dph, floor_d), '{:.2f}')} "
                 f"and {n(ratio(dph, floor_u), '{:.2f}')} of them")
    L.append("")
L.append(f"{'':2} {'scenario':30} {'hub fl/s':>9} {'peer fl/s':>9} {'hub/peer':>8} {'hub push/s':>10} {'peer push/s':>11} "
         f"{'hub fr/s':>9} {'peer fr/s':>9} {'h/floor':>7} {'p/floor':>7} {'hub p99':>8} {'peer p99':>8} {'err h/p':>7} {'cpu h/p':>7}")
starved = []
for s in ["a", "b", "c", "d", "d2"]:
    r = sc.get(s)
    if not r:
        continue
    h, p = r["hub"] or {}, r["peer"] or {}
    hf, pf = r.get("hub_floor") or {}, r.get("peer_floor") or {}
    L.append(f"{s:2} {r['desc']:30} {n(h.get('flushes_per_sec')):>9} {n(p.get('flushes_per_sec')):>9} "
             f"{x(r.get('flushes_ratio_hub_over_peer')):>8} {n(h.get('pushes_per_sec')):>10} {n(p.get('pushes_per_sec')):>11} "
             f"{n(h.get('frames_in_per_sec')):>9} {n(p.get('frames_in_per_sec')):>9} "
             f"{n(hf.get('frames_fraction_of_floor'), '{:.2f}'):>7} {n(pf.get('frames_fraction_of_floor'), '{:.2f}'):>7} "
             f"{n(h.get('ack_p99_ms'), '{:.2f}'):>8} {n(p.get('ack_p99_ms'), '{:.2f}'):>8} "
             f"{n(h.get('errors'), '{:.0f}')}/{n(p.get('errors'), '{:.0f}'):<5} {n(h.get('hub_cpu_pct'))}/{n(p.get('hub_cpu_pct'))}")
    # A closed-loop run keeps its server's core busy; well below that, other work on the
    # machine took the core, and the ratios say more about it than about the servers.
    if s in ("a", "b", "c", "d"):
        starved += [f"{s} {k}" for k, m in (("hub", h), ("peer", p))
                    if num(m.get("hub_cpu_pct")) and m["hub_cpu_pct"] < 80]
r = sc.get("d2")
if r:
    parts = []
    for k in ("hub", "peer"):
        srch = r["search"].get(k)
        if srch:
            steps = " ".join(f"{st['rate']}{'+' if st['sustained'] else '-'}" for st in srch["steps"])
            f10 = (r.get(f"{k}_floor") or {}).get("pushes_fraction_of_floor10")
            parts.append(f"{k} {n(srch['best_rate'])}/s [{steps}]" + (f", {f10:.2f} of the 10-frame floor" if num(f10) else ""))
    L.append(f"d2 highest sustained offered flushes/s (steps: + sustained, - not): {'; '.join(parts)}")
L.append("   fl/s: flushes acked/s; push/s: pushes delivered/s; fr/s: frames the server sent/s (acks + pushes);")
L.append("   h/floor, p/floor: fr/s as a fraction of the 1-frame-per-send floor; p99: ack p99 ms; err: generator failures;")
L.append("   cpu: the server's CPU % over the window (closed loop: ~100 when it has its core to itself)")
if starved:
    L.append(f"   WARNING: server CPU below 80% in closed-loop runs ({', '.join(starved)}): other work took the "
             f"cores; these figures and ratios are not the servers' own")
res["starved_runs"] = starved
if strace:
    L.append("")
    for k, v in strace.items():
        def f3(z):
            return f"{z:.3f}" if num(z) else "n/a"
        ur = v.get("io_uring_enter")
        L.append(f"strace d {k:4}: epoll_ctl {n(v.get('epoll_ctl'))}, socket writes "
                 f"{n(v.get('socket_write_syscalls'))}"
                 f"{f' (in {ur:,} io_uring_enter: counted by /metrics)' if ur else ''}, "
                 f"frames out {n(v.get('frames_out'))}: "
                 f"epoll_ctl/frame {f3(v.get('epoll_ctl_per_frame'))}, writes/frame {f3(v.get('writes_per_frame'))}, "
                 f"writes/(conn x loop turn) {f3(v.get('writes_per_conn_turn'))}, "
                 f"syscalls/frame {f3(v.get('syscalls_per_frame'))}")
dm = (sc.get("d") or {}).get("hub") or {}
if num(dm.get("hub_frames_out")):
    def ratio_s(a, b):
        return f"{a / b:.3f}" if num(a) and num(b) and b else "n/a"
    L.append(f"metrics d hub (window deltas): socket writes/frame {ratio_s(dm.get('hub_socket_writes'), dm.get('hub_frames_out'))}, "
             f"writes/write turn {ratio_s(dm.get('hub_socket_writes'), dm.get('hub_write_turns'))}, "
             f"write turns/loop turn {ratio_s(dm.get('hub_write_turns'), dm.get('hub_loop_turns'))}, "
             f"writable requests/frame {ratio_s(dm.get('hub_writable_requests'), dm.get('hub_frames_out'))}, "
             f"partial writes {n(dm.get('hub_partial_writes'))}")
r = sc.get("e")
if r:
    h, p = r["hub"] or {}, r["peer"] or {}
    L.append("")
    L.append(f"e  10k idle connections: RSS per connection hub {n(h.get('hub_rss_per_conn_bytes'))} B, "
             f"peer {n(p.get('hub_rss_per_conn_bytes'))} B, hub/peer {x(r.get('rss_per_conn_ratio_hub_over_peer'))}")
r = sc.get("f")
if r:
    m, q = r["memory"] or {}, r["sqlite"] or {}
    L.append(f"f  hub sqlite+fsync {n(q.get('flushes_per_sec'))} fl/s (p99 {n(q.get('ack_p99_ms'), '{:.2f}')} ms) vs memory "
             f"{n(m.get('flushes_per_sec'))} fl/s (p99 {n(m.get('ack_p99_ms'), '{:.2f}')} ms): sqlite/memory {x(r.get('flushes_ratio_sqlite_over_memory'))}")
r = sc.get("g")
if r:
    for ph in ("warm", "cold"):
        if ph in r:
            v = r[ph]
            L.append(f"g  {ph:4} start, {cold_n} models: {v['total_s']:.3f} s to the first ack on each "
                     f"(connect+sub {v['connect_sub_s']:.3f} s + slowest first ack {v['slowest_first_ack_s']:.3f} s), "
                     f"{n(v['models_per_sec'])} models/s")
    if r.get("cold_minus_warm_s") is not None:
        if r["cold_minus_warm_s"] > 0:
            L.append(f"g  loading from disk: +{r['cold_minus_warm_s']:.3f} s ({n(r.get('load_models_per_sec'))} models/s)")
        else:
            L.append(f"g  cold - warm: {r['cold_minus_warm_s']:.3f} s: loading is within the noise of the {cold_n} handshakes")
if memory:
    L.append("")
    for st in ("sqlite", "memory"):
        v = mrun.get(st)
        if v:
            L.append(f"memory ({memory.get('models')} models x {memory.get('commands_per_model')} commands of "
                     f"{memory.get('payload')} B, {st} store, --memory-budget {memory.get('budget')}): peak RSS "
                     f"{v['peak_rss_kb'] / 1024:,.0f} MB (VmHWM), limit {v['limit_kb'] / 1024:,.0f} MB, "
                     f"{v.get('hot_models', '-')} models hot, {v.get('evictions', '-')} evictions, errors {n(v.get('errors'), '{:.0f}')}")
L.append("")
L.append("targets (issue 8)")
for a, b, c in T:
    L.append(f"  {c:4}  {a:58} {b}")
L.append("")
L.append(f"JSON: {out}/results.json (medians, ratios, targets), {out}/runs/ (every run)")
with open(f"{out}/results.json", "w") as f:
    json.dump(res, f, indent=1)
txt = "\n".join(L) + "\n"
open(f"{out}/summary.txt", "w").write(txt)
sys.stdout.write(txt)
