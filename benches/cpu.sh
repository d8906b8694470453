#!/usr/bin/env bash
# Benchmark: sipplauncher's own CPU per test at --group 50, two builds side by side (issue 14.9).
#
#   bash benches/cpu.sh BEFORE AFTER [ROUNDS]     (root; default 5 rounds)
#
# BEFORE and AFTER are sipplauncher binaries (copied first, so that a rebuild meanwhile does not
# change them). The run is the one of benches/groups.sh at --group 50: the generated suite of 200
# one-call tests (ua1 calls ua0 through the lab's Kamailio), capture on, --group-pause 0,
# --sipp-call-rate 1000, --total 200, --network-mask 23. Each round runs BEFORE then AFTER, or
# AFTER then BEFORE (alternating), in one lab, so that both see the same machine. The CPU is
# sipplauncher's own user + system time (its threads, not its SIPp children), read by
# benches/procwatch.py from its zombie. Prints per run and the medians; PERF=1 first records a
# cpu-clock profile of one more run of each build (perf record -g) into $OUT/<build>-perf.data
# (perf report -i FILE --pid <sipplauncher's pid> --no-children --sort sym; grouped by thread and
# system call: python3 benches/perf_groups.py FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BEFORE AFTER [ROUNDS]" >&2; exit 2; }
ROUNDS="${3:-5}"
OUT="${OUT:-$(mktemp -d /tmp/cpu.XXXXXX)}"
mkdir -p "$OUT"
cp "$1" "$OUT/before"
cp "$2" "$OUT/after"
[ -d "$OUT/suite" ] || python3 benches/gen_suite.py "$OUT/suite" --call 200
cp benches/procwatch.py "$OUT/procwatch.py"
LAB="cpu$$"
echo "cpu bench: $ROUNDS rounds, output in $OUT" >&2

cat >"$OUT/round.sh" <<'EOF'
#!/usr/bin/env bash
set -u
OUT=$1 LAB=$2 ROUNDS=$3 PERF=$4
ip -n "$LAB-dut" route add 10.99.0.0/23 dev lab-dut
run() { # BUILD DIR [WRAPPER...]: one --group 50 run of 200 tests
    local b=$1 d=$2; shift 2
    "$@" "$OUT/$b" --dut 10.99.0.1 --network-mask 23 --testsuite "$OUT/suite" \
        --group 50 --total 200 --group-pause 0 --sipp-call-rate 1000 \
        --run-root "$d/runs" --log-file "$d/sipplauncher.log" --json "$d/report.json"
}
if [ "$PERF" = 1 ]; then
    # Profiles are runs of their own (perf is not measured as sipplauncher's CPU).
    for b in before after; do
        d="$OUT/$b-perf"; rm -rf "$d"; mkdir -p "$d"
        run "$b" "$d" perf record -q -e cpu-clock -F 2000 -g -o "$OUT/$b-perf.data" -- \
            >"$d/stdout" 2>"$d/stderr"
        sleep 1
    done
fi
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order="before after"; else order="after before"; fi
    for b in $order; do
        d="$OUT/$b-r$r"
        rm -rf "$d"; mkdir -p "$d"
        cut -d' ' -f1 /proc/loadavg >"$d/loadavg"
        run "$b" "$d" timeout 300 python3 "$OUT/procwatch.py" --out "$d" --interval 0.5 \
            --run-root "$d/runs" --
        echo "$?" >"$d/exit"
        sleep 1
    done
done
EOF
bash lab/lab.sh run "$LAB" -- bash "$OUT/round.sh" "$OUT" "$LAB" "$ROUNDS" "${PERF:-0}" \
    >"$OUT/lab.log" 2>&1 || true

python3 - "$OUT" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
med = {}
print("| build | round | CPU (s) | CPU per test (ms) | passed | load before |")
print("|---|---:|---:|---:|---:|---:|")
for b in ("before", "after"):
    per = []
    for r in range(1, rounds + 1):
        d = f"{out}/{b}-r{r}"
        try:
            s = json.load(open(f"{d}/summary.json"))
            rep = json.load(open(f"{d}/report.json"))
        except (OSError, ValueError):
            print(f"| {b} | {r} | - | - | - | - |")
            continue
        cpu = s["cpu_user_s"] + s["cpu_sys_s"]
        runs = len(rep.get("tests", [])) or 200
        passed = sum(1 for t in rep.get("tests", []) if t.get("passed"))
        load = open(f"{d}/loadavg").read().strip()
        per.append(1000 * cpu / runs)
        print(f"| {b} | {r} | {cpu:.2f} | {1000 * cpu / runs:.2f} | {passed}/{runs} | {load} |")
    med[b] = statistics.median(per) if per else float("nan")
print()
print(f"median CPU per test: before {med['before']:.2f} ms, after {med['after']:.2f} ms")
EOF
echo "runs kept in $OUT" >&2
