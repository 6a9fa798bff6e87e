#!/usr/bin/env python3
"""Write docs/PERFORMANCE.md and the B1 plot from a scripts/bench.sh run.

Usage (bench.sh calls it):
  bench_report.py --results R.jsonl --scaling S.jsonl --budget B.jsonl
                  --instructions I.jsonl
                  --command CMD --date DATE --commit REV
                  --out docs/PERFORMANCE.md --plot docs/bench/b1.png

R and S are aggregate.py output (one line per peer and workload, medians);
B holds dfm-bench's raw BUDGET lines, I the callgrind counts of bench.sh.
Every verdict in the report is computed here from those numbers, so a rerun
can never keep a stale "met".
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile

PEER = "dfmdispatch"
NOT_NATIVE = {PEER, "python-dfm", "callcost"}


def load(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.lstrip().startswith("{")]


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.by_key = {(r["peer"], r["workload"]): r for r in rows}

    def get(self, peer, workload, field):
        row = self.by_key.get((peer, workload))
        return None if row is None else row.get(field)

    def peers(self):
        seen = []
        for r in self.rows:
            if r["peer"] not in seen:
                seen.append(r["peer"])
        return seen


# ---- formatting -------------------------------------------------------

def rate(x):
    if x is None:
        return "–"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.0f k" % (x / 1e3)
    return "%.0f" % x


def num(x, digits=1):
    return "–" if x is None else "{:,.{}f}".format(x, digits)


def mb(kb):
    return "–" if kb is None else "%.1f" % (kb / 1024.0)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# ---- machine ----------------------------------------------------------

def machine():
    cpu = "unknown"
    mem_kb = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem_kb = int(line.split()[1])
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    mem = "%.0f GiB RAM" % (mem_kb / 1048576.0) if mem_kb else "RAM unknown"
    return "nproc = %s, CPU \"%s\", %s, Linux %s" % (
        nproc, cpu, mem, platform.release())


# ---- goals ------------------------------------------------------------

def verdict(ok):
    if ok is None:
        return "no data"
    return "**met**" if ok else "**not met**"


def goals(res):
    """Each goal as (goal, measured, verdict), computed from `res`."""
    rows = []
    g = res.get

    def ratio_goal(workload, peer, factor):
        mine, theirs = g(PEER, workload, "tokens_per_s"), \
            g(peer, workload, "tokens_per_s")
        label = "%s ≥ %s× %s" % (workload, factor, peer)
        if mine is None or theirs is None or theirs <= 0:
            rows.append((label, "–", verdict(None)))
            return
        r = mine / theirs
        rows.append((label, "%s vs %s tokens/s: %.2f×" % (
            rate(mine), rate(theirs), r), verdict(r >= factor)))

    ratio_goal("B1-P1", "libuv-async", 1.6)
    ratio_goal("B1-P2", "moodycamel", 1.15)

    for wl in ("B1-P1", "B1-P2"):
        a = g(PEER, wl, "allocs_per_token")
        rows.append(("%s allocations 0.00 per token" % wl,
                     "–" if a is None else "%.2f (%.4f)" % (a, a),
                     verdict(None if a is None else round(a, 2) == 0)))

    for wl in ("B1-P1", "B1-P2", "B2"):
        mine, theirs = g(PEER, wl, "peak_rss_kb"), \
            g("mutex-deque", wl, "peak_rss_kb")
        ok = None if mine is None or theirs is None else mine <= theirs
        rows.append(("%s peak RSS ≤ mutex-deque's" % wl,
                     "–" if ok is None else "%s MB vs %s MB" % (
                         mb(mine), mb(theirs)), verdict(ok)))

    natives = [(r["p50_us"], r["peer"]) for r in res.rows
               if r["workload"] == "B2" and r["peer"] not in NOT_NATIVE
               and r.get("p50_us") is not None]
    mine = g(PEER, "B2", "p50_us")
    if natives and mine is not None:
        best, who = min(natives)
        rows.append(("B2 p50 ≤ best native peer's p50",
                     "%s µs vs %s µs (%s)" % (num(mine), num(best), who),
                     verdict(mine <= best)))
    else:
        rows.append(("B2 p50 ≤ best native peer's p50", "–", verdict(None)))

    d = g(PEER, "B3d-dfm-direct", "ns_per_call")
    e = g(PEER, "B3e-dfm-shaped", "ns_per_call")
    f = g(PEER, "B3f-dfm-shaped-variadic", "ns_per_call")
    ffi = g("callcost", "B3b-ffi-cif-once", "ns_per_call")
    rows.append(("B3d ≤ 10 ns", "–" if d is None else "%.1f ns" % d,
                 verdict(None if d is None else d <= 10)))
    if d is not None and e is not None:
        rows.append(("B3e ≤ B3d + 5 ns", "%.1f ns ≤ %.1f ns?" % (e, d + 5),
                     verdict(e <= d + 5)))
    else:
        rows.append(("B3e ≤ B3d + 5 ns", "–", verdict(None)))
    if None not in (d, f, ffi):
        limit = d + 1.1 * ffi
        rows.append(("B3f ≤ B3d + 1.1 × B3b-ffi-cif-once",
                     "%.1f ns ≤ %.1f ns?" % (f, limit), verdict(f <= limit)))
    else:
        rows.append(("B3f ≤ B3d + 1.1 × B3b-ffi-cif-once", "–",
                     verdict(None)))

    for wl in ("B1-P1", "B1-P2"):
        ratio_goal(wl, "python-dfm", 200)
    return rows


# ---- scaling ----------------------------------------------------------

def producer_rows(scaling):
    rows = []
    base = None
    for r in scaling:
        m = re.fullmatch(r"B1-P(\d+)", r["workload"])
        if not m:
            continue
        rows.append((int(m.group(1)), r))
    rows.sort(key=lambda x: x[0])
    out = []
    for p, r in rows:
        if p == 1:
            base = r["tokens_per_s"]
        rel = "–" if not base else "%.2f×" % (r["tokens_per_s"] / base)
        a = r.get("allocs_per_token")
        out.append((p, "{:,}".format(r["tokens"]), rate(r["tokens_per_s"]),
                    rel, "–" if a is None else "%.2f" % a,
                    mb(r.get("peak_rss_kb"))))
    return out


def payload_rows(scaling):
    rows = []
    for r in scaling:
        m = re.fullmatch(r"B1-P(\d+)-(\d+)B", r["workload"])
        if m:
            rows.append((int(m.group(2)), int(m.group(1)), r))
    rows.sort(key=lambda x: (x[0], x[1]))
    out = []
    for size, p, r in rows:
        a = r.get("allocs_per_token")
        out.append(("{:,}".format(size), p, "{:,}".format(r["tokens"]),
                    rate(r["tokens_per_s"]),
                    num(r["tokens_per_s"] * size / 1048576.0),
                    "–" if a is None else "%.2f" % a,
                    mb(r.get("peak_rss_kb"))))
    return out


def budget_rows(budget):
    groups = {}
    for r in budget:
        groups.setdefault(r["budget_ns"], []).append(r)
    out = []
    for ns in sorted(groups):
        runs = groups[ns]

        def med(field):
            return statistics.median(r[field] for r in runs)
        out.append(("%s µs" % num(ns / 1e3, 0), len(runs),
                    num(med("tokens_per_call")),
                    "{:,}".format(int(med("p50_overshoot_ns"))),
                    "{:,}".format(int(med("p99_overshoot_ns"))),
                    "{:,}".format(max(r["max_overshoot_ns"] for r in runs)),
                    "{:,}".format(int(med("control_p50_overshoot_ns"))),
                    "{:,}".format(max(r["control_max_overshoot_ns"]
                                      for r in runs))))
    return out


COST_WHAT = {
    "direct": ("`dfm_runner_dispatch`, direct runner, plain callback",
               "validation, routing, the call, the counter"),
    "shaped": ("`dfm_runner_dispatch`, direct runner, shaped callback",
               "the same, the function called through a precompiled stub"),
    "variadic": ("`dfm_runner_dispatch`, direct runner, variadic shape",
                 "the same, the function called through libffi"),
}


def instruction_rows(costs):
    out = []
    for r in costs:
        n = r.get("tokens") or 0
        if not n:
            continue
        if r["variant"] in COST_WHAT and r.get("dispatch") is not None:
            what, does = COST_WHAT[r["variant"]]
            out.append((what, "{:,.0f}".format(r["dispatch"] / n), does))
        elif r["variant"] == "queued":
            if r.get("dispatch") is not None:
                out.append(("`dfm_runner_dispatch`, manual runner",
                            "{:,.0f}".format(r["dispatch"] / n),
                            "validation, one slot reserved, the token "
                            "copied into it"))
            if r.get("pump") is not None:
                out.append(("`dfm_process_pending`, per token",
                            "{:,.0f}".format(r["pump"] / n),
                            "the slot read, the view built, routing, the "
                            "call, the release check"))
    return out


CEILING_WHAT = {
    "ceiling-spsc": "a ring of 48-byte tokens, one producer, its tail "
                    "moved by a plain store",
    "ceiling-rmw": "the same ring, its tail moved by a compare-and-swap "
                   "(what one order across producers costs)",
    PEER: "the library, in the same rounds",
}


def ceiling_rows(ceiling):
    ours = next((r["tokens_per_s"] for r in ceiling
                 if r["peer"] == PEER and r.get("tokens_per_s")), None)
    out = []
    for r in sorted(ceiling, key=lambda r: list(CEILING_WHAT).index(
            r["peer"]) if r["peer"] in CEILING_WHAT else 99):
        low, high = (r.get("spread") or {}).get("tokens_per_s", [None, None])
        out.append((r["peer"], CEILING_WHAT.get(r["peer"], ""),
                    rate(r.get("tokens_per_s")),
                    "%s – %s" % (rate(low), rate(high)),
                    "–" if ours is None or r["peer"] == PEER
                    else "%.2f×" % (r["tokens_per_s"] / ours)))
    return out


def cost_of(costs, variant, field):
    for r in costs:
        if r["variant"] == variant and r.get(field) is not None \
                and r.get("tokens"):
            return r[field] / r["tokens"]
    return None


def versus(ours, theirs, peer):
    """A sentence that sets this run's rate beside a peer's."""
    if ours is None or theirs is None:
        return ""
    return "  In this run dfmdispatch reached %.2f× %s's rate (%s against " \
        "%s tokens/s)." % (ours / theirs, peer, rate(ours), rate(theirs))


def reading(res, scaling, costs, sides):
    """The page's explanation of its own figures."""
    g = res.get
    md = ["## Reading the figures\n"]

    produce = cost_of(costs, "queued", "dispatch")
    pump = cost_of(costs, "queued", "pump")
    p1 = g(PEER, "B1-P1", "tokens_per_s")
    alone = ""
    if sides and p1:
        dispatch = statistics.median(r["dispatch_ns"] for r in sides)
        drain = statistics.median(r["pump_ns"] for r in sides)
        alone = (
            "  On one thread (`dfm-bench SIDES`, medians of %d runs) the "
            "two sides take %.1f and %.1f ns a token; across two cores "
            "B1-P1 takes %.1f ns a token, %.1f× the slower side alone.  "
            "What the two cores add is the cost of sharing the queue: its "
            "slots' and its tail's cache lines move from one core to the "
            "other."
            % (len(sides), dispatch, drain, 1e9 / p1,
               1e9 / p1 / max(dispatch, drain)))
    if produce and pump:
        md.append(
            "**One producer.** A queued token costs its producer about "
            "%.0f instructions (measuring and validating the site and "
            "place, reserving a slot with one compare-and-swap, copying "
            "the token) and the pump about %.0f (reading the slot, "
            "building the callback's view, the call)%s.%s  The ceiling "
            "table shows what a bare ring reaches on the same machine.  "
            "libuv-async "
            "and moodycamel copy a 48-byte struct that was validated by "
            "nobody; dfmdispatch checks every token against the contract "
            "(UTF-8 strings, known kinds, a well-formed frame) and keeps "
            "its own copy of each.%s\n"
            % (produce, pump,
               "" if p1 is None else "; B1-P1 ran at %s tokens/s" % rate(p1),
               alone,
               versus(p1, g("libuv-async", "B1-P1", "tokens_per_s"),
                      "libuv-async")))

    prod = {int(m.group(1)): r["tokens_per_s"] for r in scaling
            for m in [re.fullmatch(r"B1-P(\d+)", r["workload"])] if m}
    if 1 in prod and 2 in prod:
        md.append(
            "**More producers.** All producers reserve slots on one tail "
            "word, which is what gives every token one place in a single "
            "dispatch order (API.md's \"in dispatch order\"; the "
            "pipeline's final stop frame relies on it).  That word's "
            "cache line moves between the producers' cores on every "
            "reservation, so two producers reach %.2f× one producer's "
            "rate on this machine, and four or eight add only contention "
            "on its two cores.  moodycamel gives each producer a queue of "
            "its own and no order across producers.%s\n"
            % (prod[2] / prod[1],
               versus(g(PEER, "B1-P2", "tokens_per_s"),
                      g("moodycamel", "B1-P2", "tokens_per_s"),
                      "moodycamel")))

    pay = sorted((int(m.group(2)), int(m.group(1)), r) for r in scaling
                 for m in [re.fullmatch(r"B1-P(\d+)-(\d+)B",
                                        r["workload"])] if m)
    one = [(size, r) for size, p, r in pay if p == 1]
    if len(one) >= 2:
        (small, rs), (large, rl) = one[0], one[-1]
        md.append(
            "**Payloads.** A payload is copied at dispatch, so the cost "
            "grows with its size: from %s to %s bytes, one producer's "
            "rate falls from %s to %s tokens/s while the bytes moved rise "
            "from %s to %s MiB/s.  Up to 88 bytes of strings, levels and "
            "payload live in the token's 128-byte slot.  A larger token "
            "takes a buffer from a pool that recycles them in classes of "
            "256 B to 64 KiB, header included, and keeps 64 of each: a "
            "burst with more buffers of one class in flight, or a token "
            "too large for the largest class (the 65,536-byte rows), "
            "allocates.\n"
            % ("{:,}".format(small), "{:,}".format(large),
               rate(rs["tokens_per_s"]), rate(rl["tokens_per_s"]),
               num(rs["tokens_per_s"] * small / 1048576.0),
               num(rl["tokens_per_s"] * large / 1048576.0)))

    rss_b2 = g(PEER, "B2", "peak_rss_kb")
    rss_p2 = g(PEER, "B1-P2", "peak_rss_kb")
    if rss_b2 is not None:
        md.append(
            "**Memory.** The library carries the Swift runtime, linked in "
            "statically so that a host needs no toolchain; the pages of "
            "it that a process touches (read-only and shared between "
            "processes) count in peak RSS, which is most of the %s MB of "
            "the nearly empty B2 run.  A backlog costs 128 bytes a token "
            "in 64 KiB segments that the queue keeps for the next burst%s."
            "\n" % (mb(rss_b2), "" if rss_p2 is None else
                     " (B1-P2, where the pump is often descheduled: %s MB)"
                     % mb(rss_p2)))

    natives = sorted(r["p50_us"] for r in res.rows
                     if r["workload"] == "B2" and r["peer"] not in NOT_NATIVE
                     and r.get("p50_us") is not None)
    if natives:
        md.append(
            "**Wake-up.** B2's latency is the kernel's: the producer's "
            "write to the eventfd, the wake-up of the blocked thread, its "
            "return from poll().  The native peers' medians lie between "
            "%s and %s µs in this run, and their order changes from run "
            "to run; dfmdispatch signals once per empty → non-empty edge "
            "and resets the fd after delivering, off the wake-up's path."
            "\n" % (num(natives[0]), num(natives[-1])))
    return md


# ---- plot -------------------------------------------------------------

def b1_series(res):
    peers = [p for p in res.peers()
             if res.get(p, "B1-P1", "tokens_per_s") is not None]
    peers.sort(key=lambda p: p != PEER)  # stable: the rest keep order
    p1 = [res.get(p, "B1-P1", "tokens_per_s") or 0 for p in peers]
    p2 = [res.get(p, "B1-P2", "tokens_per_s") or 0 for p in peers]
    return peers, p1, p2


def plot_matplotlib(res, scaling, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peers, p1, p2 = b1_series(res)
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2),
                             gridspec_kw={"width_ratios": [2, 1, 1]})
    ax = axes[0]
    xs = range(len(peers))
    w = 0.38
    ax.bar([x - w / 2 for x in xs], [v / 1e6 for v in p1], w, label="P=1",
           color="#4878a8")
    ax.bar([x + w / 2 for x in xs], [v / 1e6 for v in p2], w, label="P=2",
           color="#e0883a")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(peers, rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("M tokens/s (log scale)")
    ax.set_title("B1 pump throughput, medians")
    for x, a, b in zip(xs, p1, p2):
        for dx, v in ((-w / 2, a), (w / 2, b)):
            if v > 0:
                ax.text(x + dx, v / 1e6, rate(v).replace(" ", ""),
                        ha="center", va="bottom", fontsize=7)
    ax.legend()
    ax.grid(axis="y", which="both", alpha=0.3)

    ax = axes[1]
    prod = sorted((int(m.group(1)), r["tokens_per_s"]) for r in scaling
                  for m in [re.fullmatch(r"B1-P(\d+)", r["workload"])] if m)
    if prod:
        ax.plot([p for p, _ in prod], [v / 1e6 for _, v in prod], "o-")
        ax.set_xticks([p for p, _ in prod])
    ax.set_xlabel("producers")
    ax.set_ylabel("M tokens/s")
    ax.set_ylim(bottom=0)
    ax.set_title("dfmdispatch B1 by producers")
    ax.grid(alpha=0.3)

    ax = axes[2]
    for P, style in ((1, "s-"), (2, "^-")):
        pay = sorted((int(m.group(2)), r["tokens_per_s"]) for r in scaling
                     for m in [re.fullmatch(r"B1-P(\d+)-(\d+)B",
                                            r["workload"])]
                     if m and int(m.group(1)) == P)
        if pay:
            ax.plot([s for s, _ in pay], [v / 1e6 for _, v in pay], style,
                    label="P=%d" % P)
    ax.set_xscale("log", base=2)
    sizes = sorted({int(m.group(2)) for r in scaling
                    for m in [re.fullmatch(r"B1-P(\d+)-(\d+)B",
                                           r["workload"])] if m})
    if sizes:
        ax.set_xticks(sizes)
        ax.set_xticklabels(["%dK" % (s // 1024) if s >= 1024 else str(s)
                            for s in sizes])
    ax.set_yscale("log")
    ax.set_xlabel("payload bytes")
    ax.set_ylabel("M tokens/s")
    ax.set_title("dfmdispatch B1 by payload size")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gnuplot(res, path):
    peers, p1, p2 = b1_series(res)
    with tempfile.NamedTemporaryFile("w", suffix=".dat",
                                     delete=False) as f:
        for p, a, b in zip(peers, p1, p2):
            f.write('"%s" %g %g\n' % (p, a / 1e6, b / 1e6))
        data = f.name
    script = ("set terminal pngcairo size 1100,500\n"
              "set output '%s'\n"
              "set style data histogram\n"
              "set style histogram cluster gap 1\n"
              "set style fill solid\n"
              "set logscale y\n"
              "set ylabel 'M tokens/s'\n"
              "set title 'B1 pump throughput, medians'\n"
              "set xtics rotate by -20\n"
              "plot '%s' using 2:xtic(1) title 'P=1', '' using 3 title "
              "'P=2'\n" % (path, data))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(data)


def plot(res, scaling, path):
    """Returns a note for the report when no plot could be made."""
    try:
        plot_matplotlib(res, scaling, path)
        return None
    except ImportError:
        pass
    if shutil.which("gnuplot"):
        plot_gnuplot(res, path)
        return "(gnuplot fallback: no scaling panel.)"
    return "No plot: neither matplotlib nor gnuplot is installed."


# ---- report -----------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    for name in ("results", "scaling", "budget", "instructions", "ceiling",
                 "sides", "command", "date", "commit", "out", "plot"):
        ap.add_argument("--" + name, required=name not in (
            "scaling", "budget", "instructions", "ceiling", "sides"))
    args = ap.parse_args()

    res = Results(load(args.results))
    scaling = load(args.scaling)
    budget = load(args.budget)
    costs = load(args.instructions)
    ceiling = load(args.ceiling)
    sides = load(args.sides)
    plot_note = plot(res, scaling, args.plot)
    plot_rel = os.path.relpath(args.plot, os.path.dirname(args.out))
    goal_rows = goals(res)
    met = sum(1 for r in goal_rows if r[2] == "**met**")
    judged = sum(1 for r in goal_rows if r[2] != "no data")

    b1_tokens = res.get(PEER, "B1-P1", "tokens")
    runs = res.get(PEER, "B1-P1", "runs")
    small = (b1_tokens is not None and b1_tokens < 2000000) or \
        (runs is not None and runs < 3)

    md = []
    md.append("# Performance\n")
    md.append("Generated by `scripts/bench.sh` (with "
              "`scripts/bench_report.py`); rerun it rather than editing "
              "this page. The workloads are the peers' "
              "(`../shared/bench/peers/README.md`), run by the peers' own "
              "`run.sh` with the library added as the peer `%s`, so every "
              "figure in one table comes from the same run on the same "
              "machine. Absolute figures drift between runs; compare "
              "within this page.\n" % PEER)
    if small:
        md.append("> **Reduced run.** This page was made with fewer tokens "
                  "or repetitions than the reference suite (2,000,000 "
                  "tokens, 3 runs); treat the figures as a smoke test.\n")
    md.append("## The run\n")
    md.append("- Date: %s" % args.date)
    md.append("- Commit: `%s`" % args.commit)
    md.append("- Machine: %s" % machine())
    md.append("- Command: `%s`" % args.command)
    md.append("- Raw data: `docs/bench/%s`, `docs/bench/%s`, "
              "`docs/bench/%s`\n" % (
                  os.path.basename(args.results),
                  os.path.basename(args.scaling or "-"),
                  os.path.basename(args.budget or "-")))
    if args.instructions:
        md[-1] = md[-1].rstrip("\n") + ", `docs/bench/%s`\n" % (
            os.path.basename(args.instructions))

    md.append("## Goals\n")
    md.append("%d of %d goals with data are met in this run.  Figures move "
              "a lot between runs on this 2-core machine (a peer's B1 rate "
              "by a third or more), so a verdict near its threshold can "
              "change from one run to the next; the instruction counts "
              "further down do not.\n" % (met, judged))
    md.append(table(["goal", "measured", "verdict"], goal_rows) + "\n")

    md.append("## Results\n")
    md.append("Medians of the runs per (peer, workload); `allocs/token` "
              "comes from one extra B1 run under the allocation shim. "
              "B1 and B2 rates are tokens/s, B3 is nanoseconds per call.\n")
    rows = []
    order = res.peers()
    for r in sorted(res.rows, key=lambda r: (order.index(r["peer"]),
                                             r["workload"])):
        a = r.get("allocs_per_token")
        rows.append((r["peer"], r["workload"],
                     "{:,}".format(r["tokens"]), r.get("runs", "–"),
                     rate(r.get("tokens_per_s")) if "ns_per_call" not in r
                     else "–",
                     num(r.get("p50_us")), num(r.get("p99_us")),
                     "–" if a is None else "%.2f" % a,
                     mb(r.get("peak_rss_kb")),
                     num(r.get("ns_per_call"))))
    md.append(table(["peer", "workload", "tokens", "runs", "tokens/s",
                     "p50 µs", "p99 µs", "allocs/token", "peak RSS MB",
                     "ns/call"], rows) + "\n")
    md.append("![B1 tokens/s per peer, and dfmdispatch scaling](%s)\n"
              % plot_rel)
    if plot_note:
        md.append(plot_note + "\n")

    md.append("## Scaling (dfm-bench alone)\n")
    md.append("B1 with the spec's token and checks, varying one parameter. "
              "On a machine with fewer cores than producers plus the pump, "
              "extra producers only add contention.\n")
    md.append("### Producers\n")
    md.append(table(["producers", "tokens", "tokens/s", "vs 1 producer",
                     "allocs/token", "peak RSS MB"],
                    producer_rows(scaling)) + "\n")
    md.append("### Payload size\n")
    md.append("`data` is a `DFM_VALUE_BYTES` of the given size (the "
              "sequence number in its first 8 bytes), copied at dispatch. "
              "Large payloads use fewer tokens so that at most 256 MiB of "
              "payload is sent.\n")
    md.append(table(["payload bytes", "producers", "tokens", "tokens/s",
                     "payload MiB/s", "allocs/token", "peak RSS MB"],
                    payload_rows(scaling)) + "\n")
    md.append("### Pump budget overshoot\n")
    md.append("`dfm_process_pending_budget(runner, 0, budget, &result)` on "
              "a full queue whose callbacks each spin about 1 µs. The "
              "overshoot is the call's elapsed time minus the budget, for "
              "the calls that stopped on the budget (not those that emptied "
              "the queue). The budget is checked after each callback, so "
              "one callback's length is the expected overshoot. The "
              "control is the same loop without the library (call the "
              "callback, read the clock): its overshoot is what this "
              "machine adds by preempting the thread, so a pump's tail "
              "near the control's is not the pump's doing. p50 and p99 are medians over the "
              "runs, max is the largest of any run.\n")
    md.append(table(["budget", "runs", "tokens per call",
                     "p50 overshoot ns", "p99 overshoot ns",
                     "max overshoot ns", "control p50 ns", "control max ns"],
                    budget_rows(budget)) + "\n")

    rows = ceiling_rows(ceiling)
    if rows:
        md.append("### The machine's ceiling\n")
        md.append("B1 with one producer, through two rings that do none of "
                  "a dispatcher's work (`bench/ceiling.cpp`, on the peers' "
                  "harness, so the token, the routing and the checks of "
                  "B1 are the peers'), run in the same rounds as "
                  "dfm-bench.  They show what this machine allows a queue, "
                  "and how far below it the library is; the spread shows "
                  "how much one program's rate moves from run to run here."
                  "\n")
        md.append(table(["program", "what it is", "tokens/s (median)",
                         "spread", "vs dfmdispatch"], rows) + "\n")

    rows = instruction_rows(costs)
    if rows:
        md.append("## Instructions per call (callgrind)\n")
        md.append("Counted by `valgrind --tool=callgrind` on one thread "
                  "(`dfm-bench COST <variant> 200000`): the inclusive "
                  "instructions of each call divided by the tokens, the "
                  "host's callback included.  Unlike the times above, these "
                  "counts are the same on every run of the same build.\n")
        md.append(table(["call", "instructions per token", "what it does"],
                        rows) + "\n")
    md += reading(res, scaling, costs, sides)

    with open(args.out, "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
