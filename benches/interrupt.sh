#!/usr/bin/env bash
# Interrupt latency (issue 6 item 4): from SIGINT to sipplauncher's exit with --group 50 running.
#
#   bash benches/interrupt.sh [N]       (default 10 of each kind; root; needs a release build)
#
# A generated suite of 50 calls through the lab's Kamailio whose UAC waits 8 s between ACK and BYE
# (--sipp-recv-timeout 30000), capture on, no before.sh/after.sh and no GLOBAL scripts.
# Per try: start the run, wait until all 50 tests print STARTING and their 100 SIPp processes
# are up, wait 0.5 s, send SIGINT, time until the process has exited (waitpid). Two kinds,
# interleaved: SIGINT to sipplauncher's pid alone (`kill -INT`), and to its whole process group
# (a Ctrl+C on a terminal: SIPp gets it too). After each try: its exit status, the JSON report's
# `interrupted`, and what was left in the namespace (sipp-* links, SIPp processes, run folders).
# Median, min and max per kind. OUT: a fresh temporary folder. WINDOW=1 runs with --window.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="${OUT:-$(mktemp -d /tmp/interrupt.XXXXXX)}"
mkdir -p "$OUT"
cp "$BIN" "$OUT/sipplauncher"
python3 benches/gen_suite.py "$OUT/suite" --long 50 --pause-ms 8000
cat >"$OUT/driver.py" <<'PY'
import json, os, signal, statistics, subprocess, sys, time
out, n = sys.argv[1], int(sys.argv[2])
ns = os.readlink("/proc/self/ns/net")

def in_ns(comm):
    c = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/ns/net") == ns and open(f"/proc/{p}/comm").read().strip() == comm:
                    c += 1
            except OSError:
                pass
    return c

def links():
    return sum(1 for l in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
               if l.split(":")[1].strip().startswith("sipp-"))

res = []
for i in range(2 * n):
    kind = "pid" if i % 2 == 0 else "group"
    d = os.path.join(out, f"try{i:02d}-{kind}")
    os.makedirs(d)
    cmd = [os.path.join(out, "sipplauncher"), "--dut", "10.99.0.1", "--testsuite", os.path.join(out, "suite"),
           "--group", "50", "--group-pause", "0", "--sipp-call-rate", "1000", "--sipp-recv-timeout", "30000",
           "--run-root", os.path.join(d, "runs"), "--log-file", os.path.join(d, "log"), "--json", os.path.join(d, "report.json")]
    if os.environ.get("WINDOW") == "1":
        cmd.append("--window")
    stdout = open(os.path.join(d, "stdout"), "w")
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        started = open(os.path.join(d, "stdout")).read().count("STARTING")
        if started >= 50 and in_ns("sipp") >= 100:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    sipp_before = in_ns("sipp")
    t0 = time.monotonic()
    if kind == "pid":
        os.kill(p.pid, signal.SIGINT)
    else:
        os.killpg(p.pid, signal.SIGINT)
    status = p.wait()
    took = time.monotonic() - t0
    time.sleep(0.2)
    try:
        rep = json.load(open(os.path.join(d, "report.json")))
        interrupted = rep["interrupted"]
        states = {}
        for t in rep["tests"]:
            states[t["state"] + "/" + t["result"]] = states.get(t["state"] + "/" + t["result"], 0) + 1
    except (OSError, ValueError) as e:
        interrupted, states = f"no report: {e}", {}
    runs = os.path.join(d, "runs")
    folders = sum(len(os.listdir(os.path.join(runs, t))) for t in os.listdir(runs)) if os.path.isdir(runs) else 0
    r = {"try": i, "kind": kind, "started": started, "sipp_before": sipp_before, "ms": round(took * 1000, 1),
         "status": status, "interrupted": interrupted, "states": states,
         "left_links": links(), "left_sipp": in_ns("sipp"), "left_folders": folders}
    res.append(r)
    print(json.dumps(r), file=sys.stderr, flush=True)
    time.sleep(1)
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=1)
PY
bash lab/lab.sh run "int$$" -- python3 "$OUT/driver.py" "$OUT" "$N" >"$OUT/lab.log" 2>&1 || true
python3 - "$OUT" <<'PY'
import json, os, statistics, sys
res = json.load(open(os.path.join(sys.argv[1], "results.json")))
print("| SIGINT to | tries | median (ms) | min (ms) | max (ms) | exit statuses | JSON interrupted | left: links / SIPp / run folders |")
print("|---|---:|---:|---:|---:|---|---|---|")
for kind, label in (("pid", "sipplauncher's pid (kill -INT)"), ("group", "its process group (Ctrl+C)")):
    rs = [r for r in res if r["kind"] == kind]
    ms = [r["ms"] for r in rs]
    print(f"| {label} | {len(rs)} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} "
          f"| {sorted(set(r['status'] for r in rs))} | {sorted(set(str(r['interrupted']) for r in rs))} "
          f"| {sum(r['left_links'] for r in rs)} / {sum(r['left_sipp'] for r in rs)} / {sum(r['left_folders'] for r in rs)} |")
print()
for r in res:
    print(f"- try {r['try']} ({r['kind']}): {r['ms']} ms, {r['started']} STARTING, {r['sipp_before']} SIPp before, states {r['states']}")
PY
echo "raw: $OUT/results.json" >&2
