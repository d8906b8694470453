#!/usr/bin/env python3
"""The table of benches/groups.sh from the runs kept in its OUT folder (so that it can be made
again without running anything): benches/groups.csv (one row per run), OUT/groups.md.

    groups_report.py OUT ROUNDS MASK "SIZES"
"""
import re
import csv, json, os, statistics, sys
from collections import Counter
out, rounds, mask, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3], [int(x) for x in sys.argv[4].split()]

KINDS = [
    (r"while pausing .*received 'SIP/2.0 180", "UAC got the 180 after the 200 (the DUT forwarded them out of order)"),
    (r"while expecting 'ACK'.*received 'INVITE", "UAS got an INVITE retransmission while waiting for the ACK (it answered after the DUT's 500 ms T1)"),
    (r"receive timeout", "SIPp receive timeout (5 s)"),
    (r"received 'SIP/2.0 408", "UAC got 408 Request Timeout from the DUT (the UAS did not answer the INVITE or BYE in time)"),
    (r"received 'SIP/2.0 477", "UAC got 477 from the DUT (it could not send to the UAS)"),
    (r"unexpected (BYE|CANCEL)", "UAS got a BYE/CANCEL it did not expect (its call had moved on)"),
    (r"no free address left", "no free address left in the DUT network"),
]


def kind(reason):
    for rx, k in KINDS:
        if re.search(rx, reason):
            return k
    return reason[:160]


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")

def one(d):
    s = json.load(open(os.path.join(d, "summary.json")))
    rows = list(csv.DictReader(open(os.path.join(d, "samples.csv"))))
    mx = lambda k: max((int(r[k]) for r in rows if r[k]), default=0)
    try:
        rep = json.load(open(os.path.join(d, "report.json")))
        tests = rep["tests"]
    except (OSError, ValueError):
        rep, tests = None, []
    ov = [(t["wall_s"] - t["sipp_s"]) * 1000 for t in tests if t.get("sipp_s") is not None]
    sipp = [t["sipp_s"] * 1000 for t in tests if t.get("sipp_s") is not None]
    # The tool's own time per test at this size: the run's wall time less, for each group (a
    # batch of `group` consecutive runs), the longest SIPp time in it, divided by the runs.
    g = rep["group"] if rep else 1
    by_batch = {}
    for t in tests:
        by_batch[t["index"] // g] = max(by_batch.get(t["index"] // g, 0), t.get("sipp_s") or 0)
    tool_ms = (s["wall_s"] - sum(by_batch.values())) / len(tests) * 1000 if tests else float("nan")
    fails = [t for t in tests if not t["passed"]]
    reasons = Counter((t["state"], kind(t["reason"] or "")) for t in fails)
    return {
        "runs": len(tests), "wall_s": s["wall_s"], "tests_per_s": len(tests) / s["wall_s"] if s["wall_s"] else 0,
        "ov_med_ms": pct(ov, .5), "tool_ms": tool_ms, "ov_p95_ms": pct(ov, .95), "sipp_med_ms": pct(sipp, .5),
        "peak_rss_mib": s["peak_rss_kib"] / 1024, "cpu_s": s["cpu_user_s"] + s["cpu_sys_s"],
        "child_cpu_s": s["children_cpu_user_s"] + s["children_cpu_sys_s"],
        "failures": len(fails), "max_fds": mx("fds"), "max_threads": mx("threads"), "max_children": mx("children"),
        "exit": s["status"], "left_links": int(s["after_exit"]["run_links"]) + int(s["after_exit"]["spare_links"]),
        "left_procs": int(s["after_exit"]["procs_in_ns"]), "left_folders": int(s["after_exit"]["run_folders"]),
        "reasons": reasons,
        "load": float(open(os.path.join(d, "loadavg")).read()) if os.path.exists(os.path.join(d, "loadavg")) else float("nan"),
    }

raw = []
for g in sizes:
    for r in range(1, rounds + 1):
        d = os.path.join(out, f"r{r}-g{g}-m{mask}")
        if os.path.exists(os.path.join(d, "summary.json")):
            x = one(d); x.update(group=g, round=r, mask=mask); raw.append(x)
b24 = os.path.join(out, "r1-g200-m24")
if os.path.exists(os.path.join(b24, "summary.json")):
    x = one(b24); x.update(group=200, round=1, mask="24"); raw.append(x)

keys = ["group", "mask", "round", "runs", "wall_s", "tests_per_s", "ov_med_ms", "ov_p95_ms", "tool_ms", "sipp_med_ms",
        "peak_rss_mib", "cpu_s", "child_cpu_s", "failures", "max_fds", "max_threads", "max_children", "exit", "load",
        "left_links", "left_procs", "left_folders"]
with open("benches/groups.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
    w.writeheader()
    for x in raw:
        w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items() if k in keys})

med = lambda xs: statistics.median(xs) if xs else float("nan")
lines = [f"| --group | /mask | runs | rounds | tests/s | overhead median (ms) | overhead p95 (ms) | tool time per test (ms) | SIPp median (ms) "
         f"| peak RSS (MiB) | CPU sipplauncher (s) | CPU children (s) | max fds | max threads | failures | load before (1 min) | left after |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
groups = [(g, mask) for g in sizes] + ([(200, "24")] if any(x["mask"] == "24" for x in raw) else [])
for g, m in groups:
    xs = [x for x in raw if x["group"] == g and x["mask"] == m]
    if not xs:
        lines.append(f"| {g} | /{m} | - | 0 | did not run | | | | | | | | | | | | |")
        continue
    f = lambda k: med([x[k] for x in xs])
    left = sum(x["left_links"] + x["left_procs"] + x["left_folders"] for x in xs)
    lines.append(f"| {g} | /{m} | {xs[0]['runs']} | {len(xs)} | {f('tests_per_s'):.1f} | {f('ov_med_ms'):.0f} | {f('ov_p95_ms'):.0f} "
                 f"| {f('tool_ms'):.1f} | {f('sipp_med_ms'):.0f} | {f('peak_rss_mib'):.1f} | {f('cpu_s'):.2f} | {f('child_cpu_s'):.2f} "
                 f"| {max(x['max_fds'] for x in xs)} | {max(x['max_threads'] for x in xs)} "
                 f"| {sum(x['failures'] for x in xs)} | {f('load'):.1f} | {'nothing' if left == 0 else left} |")
lines.append("")
for x in raw:
    for (st, why), k in x["reasons"].most_common():
        lines.append(f"- --group {x['group']} /{x['mask']} round {x['round']}: {k} x {st}: {why}")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "groups.md"), "w").write(text)
print(text)
