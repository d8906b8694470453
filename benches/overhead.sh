#!/usr/bin/env bash
# Benchmark: per-test overhead of real runs = a test run's wall time (PREPARING to CLEAN) minus
# the time its SIPp processes ran, median and 95th percentile of N runs of a one-call OPTIONS
# test against the lab's Kamailio, at --sipp-call-rate 1000 --no-pcap. Also the wall time of the
# example suite at --group 1 and --group 6. Root only; everything runs in the lab's namespaces.
#   bash benches/overhead.sh [N]          (default N=50; needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-50}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/suite/options-0000"
cp -r tmp-testsuite/TEMPLATES "$work/suite/"
cp tmp-testsuite/users.csv "$work/suite/"
cp tmp-testsuite/options-0000/uac_ua0.xml "$work/suite/options-0000/"

stats() { # JSON report -> "median p95 (n)" of wall_s - sipp_s in ms
    python3 - "$1" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["tests"]
o = sorted((x["wall_s"] - x["sipp_s"]) * 1000 for x in t if x.get("sipp_s") is not None)
w = sorted(x["wall_s"] * 1000 for x in t)
s = sorted(x["sipp_s"] * 1000 for x in t if x.get("sipp_s") is not None)
p = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
ok = sum(1 for x in t if x["passed"])
print(f"overhead median {p(o,.5):.1f} ms, p95 {p(o,.95):.1f} ms; wall median {p(w,.5):.1f} ms; "
      f"sipp median {p(s,.5):.1f} ms; {ok}/{len(t)} passed")
PY
}

common=(--dut DUT --group-pause 0 --no-pcap --run-root "$work/runs" --log-file "$work/log")
run_lab() { bash lab/lab.sh run "bench$$" -- "$@" >"$work/out" 2>&1; }
args() { local a=(); for x in "${common[@]}"; do a+=("${x/DUT/$1}"); done; echo "${a[@]}"; }

dut=10.99.0.1
# With and without capture, interleaved in one lab session each, so both see the same machine.
for round in 1 2; do
    # shellcheck disable=SC2046
    run_lab "$BIN" $(args $dut) --testsuite "$work/suite" --total "$N" --group 1 \
        --sipp-call-rate 1000 --json "$work/one-nopcap-$round.json"
    echo "one-call OPTIONS test, $N runs, --group 1, --no-pcap (round $round): $(stats "$work/one-nopcap-$round.json")"
    # shellcheck disable=SC2046
    run_lab "$BIN" $(args $dut | sed 's/--no-pcap//') --testsuite "$work/suite" --total "$N" --group 1 \
        --sipp-call-rate 1000 --json "$work/one-pcap-$round.json"
    echo "one-call OPTIONS test, $N runs, --group 1, capture on (round $round): $(stats "$work/one-pcap-$round.json")"
done

for g in 1 6; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2046
    run_lab "$BIN" $(args $dut) --testsuite tmp-testsuite --group "$g" --json "$work/ex$g.json" || true
    end=$(date +%s.%N)
    echo "example suite, --group $g: lab run $(python3 -c "print(f'{$end-$start:.2f}')") s (lab up/down included); $(python3 -c "
import json; d=json.load(open('$work/ex$g.json')); print(f\"sipplauncher elapsed {d['elapsed_s']:.2f} s, {d['summary']['success']}/{d['summary']['total']} passed\")")"
done
