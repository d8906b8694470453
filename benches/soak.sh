#!/usr/bin/env bash
# Soak: one long real run against the lab's Kamailio, watched from outside (issue 6 item 2).
#
#   bash benches/soak.sh [RUNS] [GROUP]      (default 10000 runs, --group 10; root)
#
# A generated 20-test suite (benches/gen_suite.py: 4 calls, 2 dns tests like tmp-testsuite/dns-0000,
# 2 calls with before.sh/after.sh, 12 OPTIONS pings; the calls wait 20 ms between ACK and BYE so
# that 10,000 runs take minutes), capture on, --group-pause 0, --sipp-call-rate 1000,
# --total RUNS. benches/procwatch.py samples once a second, from the runner's namespace:
# sipplauncher's RSS, open fds, threads, children, zombies, its descendants, the sipp processes
# and all processes of the namespace, the sipp-<run_id> links and the spare sipp-_xxxxxx links
# (kept by design, at most --group), the addresses on sipp-* links, the run folders under the
# run root, and the DNS records: every finished dns test's names are looked up with dig 2 s
# after its CLEANING line and must be REFUSED or NXDOMAIN (a running one's must answer). A last sample is
# taken once sipplauncher has exited.
#
# Environment: REPORTS=1 adds --json and --junit (their memory is then part of the RSS; the
# failures are counted from the JSON); HTML=1 adds --html (the page is watched every 2 s: its
# size and each rewrite while the run goes on); OUT (a fresh temporary folder); BIN
# (target/release/sipplauncher, copied first); WARMUP (runs before the first sample that counts,
# default RUNS/10); EVERY (print a sample row every EVERY runs, default 500); WINDOW=1 runs with
# --window (no groups: --group tests under way, each test that ends making room for the next).
# Verdict against the issue's targets: RSS growth <= 2 MiB from the first sample after warm-up to
# the last sample of the run; fds, threads and children within a constant bound; no zombie child
# left unreaped from one sample to the next; zero links, addresses, processes, folders and DNS
# records left; no failed run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10000}"
GROUP="${2:-10}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="${OUT:-$(mktemp -d /tmp/soak.XXXXXX)}"
REPORTS="${REPORTS:-0}"
WARMUP="${WARMUP:-$((RUNS / 10))}"
EVERY="${EVERY:-500}"
mkdir -p "$OUT"
cp "$BIN" "$OUT/sipplauncher"
cp benches/procwatch.py "$OUT/procwatch.py"
python3 benches/gen_suite.py "$OUT/suite" --call 4 --dns 2 --scripted 2 --options 12 --short-calls 20
extra=()
[ "$REPORTS" = 1 ] && extra=(--json "$OUT/report.json" --junit "$OUT/report.xml")
[ "${WINDOW:-0}" = 1 ] && extra+=(--window)
watch_html=
if [ "${HTML:-0}" = 1 ]; then
    extra+=(--html "$OUT/report.html")
    # Each rewrite of the page while the run goes on: its time and size, every 2 s.
    ( while :; do stat -c '%Y %s' "$OUT/report.html" 2>/dev/null || true; sleep 2; done ) \
        >>"$OUT/html_writes.txt" &
    watch_html=$!
fi
echo "soak: $RUNS runs at --group $GROUP, reports: $REPORTS, window: ${WINDOW:-0}, output in $OUT" >&2
start=$(date +%s)
status=0
bash lab/lab.sh run "soak$$" -- python3 "$OUT/procwatch.py" --out "$OUT/watch" --interval 1 \
    --run-root "$OUT/runs" --dns-check -- \
    "$OUT/sipplauncher" --dut 10.99.0.1 --testsuite "$OUT/suite" --group "$GROUP" --total "$RUNS" \
    --group-pause 0 --sipp-call-rate 1000 --run-root "$OUT/runs" --log-file "$OUT/sipplauncher.log" \
    "${extra[@]}" >"$OUT/lab.log" 2>&1 || status=$?
echo "soak: sipplauncher exited with status $status after $(($(date +%s) - start)) s (lab up/down included)" >&2
if [ -n "$watch_html" ]; then
    sleep 2
    kill "$watch_html" 2>/dev/null || true
    python3 - "$OUT/html_writes.txt" <<'PY' >&2
import sys
w = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
t = sorted({m for m, _ in w})
gaps = [b - a for a, b in zip(t, t[1:])]
print(f"soak: report.html written {len(t)} times (seen every 2 s), the longest gap {max(gaps, default=0)} s, "
      f"final size {w[-1][1] / 1e6:.2f} MB" if w else "soak: report.html never written")
PY
fi

python3 - "$OUT" "$RUNS" "$GROUP" "$WARMUP" "$EVERY" "$REPORTS" <<'PY'
import csv, json, os, re, sys
from collections import Counter
out, runs, group, warmup, every, reports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
w = os.path.join(out, "watch")
summary = json.load(open(os.path.join(w, "summary.json")))
rows = list(csv.DictReader(open(os.path.join(w, "samples.csv"))))
live = [r for r in rows if r["rss_kib"]]
last_row = rows[-1]
i = lambda r, k: int(r[k]) if r[k] else 0
cols = ["t_s", "runs_done", "passed", "failed", "not_ready", "dirty", "rss_kib", "fds", "threads", "children", "zombies",
        "stuck_zombies", "sipp_in_ns", "procs_in_ns", "run_links", "spare_links", "reserve_links", "sipp_addrs", "run_folders", "dns_pos", "dns_neg_ok", "dns_leaked"]
def md(rs, title):
    t = [f"| {' | '.join(cols)} |", "|" + "---:|" * len(cols)]
    t += [f"| {' | '.join(r[c] if r[c] != '' else '-' for c in cols)} |" for r in rs]
    return f"{title}\n\n" + "\n".join(t) + "\n"
after = [r for r in live if i(r, "runs_done") >= warmup]
first, last = (after[0], live[-1]) if after else (live[0], live[-1])
# Every EVERY runs: the first sample at or past each multiple.
picked, nxt = [], 0
for r in live:
    if i(r, "runs_done") >= nxt:
        picked.append(r)
        nxt = (i(r, "runs_done") // every + 1) * every
if picked[-1] is not live[-1]:
    picked.append(live[-1])
rng = lambda k, rs: (min(i(r, k) for r in rs), max(i(r, k) for r in rs)) if rs else (0, 0)
steady = after or live
growth_kib = i(last, "rss_kib") - i(first, "rss_kib")
fails = []
if reports and os.path.exists(os.path.join(out, "report.json")):
    rep = json.load(open(os.path.join(out, "report.json")))
    total = len(rep["tests"])
    fails = [(t["name"], t["state"], t["result"], t["reason"]) for t in rep["tests"] if not t["passed"]]
else:
    total = summary["states"]["CLEANING"] + summary["states"]["NOT READY"]
    for line in open(os.path.join(w, "stdout")):
        m = re.match(r"^\s*(FAIL|NOT READY|DIRTY)\s+(\S+) \(\d+-[a-z]+\)(.*)$", line)
        if m:
            fails.append((m.group(2), m.group(1), m.group(1), m.group(3).strip()[:300]))
checks = [
    ("runs done", total == runs, f"{total} of {runs}"),
    ("exit status 0", summary["status"] == 0, str(summary["status"])),
    ("RSS growth <= 2 MiB after warm-up", growth_kib <= 2048,
     f"{i(first,'rss_kib')} KiB at run {first['runs_done']} -> {i(last,'rss_kib')} KiB at run {last['runs_done']}: {growth_kib:+d} KiB"),
    ("fds bounded", True, "%d..%d after warm-up (%d..%d overall)" % (rng("fds", steady) + rng("fds", live))),
    ("threads bounded", True, "%d..%d after warm-up" % rng("threads", steady)),
    ("children bounded", rng("children", steady)[1] <= 2 * group + 2, "%d..%d after warm-up (SIPp and scripts of the running group)" % rng("children", steady)),
    ("no zombie left unreaped", rng("stuck_zombies", live)[1] == 0,
     "max %d zombie children at a sample (exited, not yet reaped), %d still zombies a sample later" % (rng("zombies", live)[1], rng("stuck_zombies", live)[1])),
    ("spare links <= --group", rng("spare_links", live)[1] <= group, "max %d" % rng("spare_links", live)[1]),
    ("run links <= --group", rng("run_links", live)[1] <= group, "max %d" % rng("run_links", live)[1]),
    ("one ARP reserve link", rng("reserve_links", live)[1] <= 1, "max %d" % rng("reserve_links", live)[1]),
    ("nothing left after exit", all(i(last_row, k) == 0 for k in ("run_links", "spare_links", "reserve_links", "sipp_addrs", "run_folders", "procs_in_ns", "sipp_in_ns")),
     ", ".join(f"{k} {last_row[k]}" for k in ("run_links", "spare_links", "reserve_links", "sipp_addrs", "run_folders", "procs_in_ns", "sipp_in_ns"))),
    ("DNS records removed", summary["dns_neg_ok"] > 0 and not summary["dns_leaked"],
     f"{summary['dns_neg_ok']} look-ups of finished dns tests REFUSED or NXDOMAIN, {len(summary['dns_leaked'])} answered; {summary['dns_pos']} look-ups of running ones answered"),
    ("no failed run", not fails, f"{len(fails)} failed"),
]
text = [f"soak: {total} runs at --group {group} in {summary['wall_s']:.0f} s ({total / summary['wall_s']:.1f} runs/s); "
        f"sipplauncher CPU {summary['cpu_user_s'] + summary['cpu_sys_s']:.1f} s, its children {summary['children_cpu_user_s'] + summary['children_cpu_sys_s']:.1f} s; "
        f"peak RSS {summary['peak_rss_kib']} KiB; reports {'on' if reports else 'off'}", ""]
text.append(md([first, last], f"First sample after warm-up ({warmup} runs) and last sample of the run:"))
text.append(md([last_row], "After sipplauncher exited:"))
text.append("| check | ok | figure |\n|---|---|---|")
text += [f"| {n} | {'yes' if ok else '**NO**'} | {fig} |" for n, ok, fig in checks]
text.append("")
for (name, st, res, why), k in Counter((f[0].rsplit('-', 1)[0], f[1], f[2], (f[3] or "")[:200]) for f in fails).most_common(10):
    text.append(f"- {k} x {name}-*: {st} ({res}): {why}")
text.append("")
text.append(md(picked, f"Samples every {every} runs:"))
t = "\n".join(text)
open(os.path.join(out, "soak.md"), "w").write(t)
print(t)
PY
