#!/usr/bin/env bash
# Benchmark: the sweep's own overhead (issue 15). The same runs, side by side in one lab and
# interleaved (A B, then B A, ...): A = `sipplauncher sweep --groups SIZES`, B = the same sizes
# run one by one by hand (`sipplauncher --group N --total T --json ...`, the command lines the
# sweep gives its children). For each: the wall time from start to exit, and the runs' own
# elapsed times (their JSON reports' elapsed_s); what the sweep adds is
#   (A's wall - A's runs' elapsed) - (B's wall - B's runs' elapsed)
# i.e. its exec per size, reading each report, writing sweep.json/svg after each size and
# sweep.html at the end. Medians over the rounds.
#
#   bash benches/sweep.sh [ROUNDS]     (default 5; root; needs a release build)
#
# A generated suite of 20 one-call tests through the lab's Kamailio (UAC -> DUT -> UAS, the
# example's macros), --sipp-call-rate 1000, --group-pause 0, capture on; SIZES "1 5 10"
# (--total 4 x the size, at least the suite: 20, 20, 40). DRY=1 runs the same in --dry-run
# (no lab, no SIPp: the overhead alone, away from the DUT's noise; SIZES "1 10 50", 200 tests).
# Environment: SIZES, OUT (a fresh temporary folder), BIN (target/release/sipplauncher, copied).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-5}"
DRY="${DRY:-0}"
if [ "$DRY" = 1 ]; then SIZES="${SIZES:-1 10 50}"; TESTS=200; else SIZES="${SIZES:-1 5 10}"; TESTS=20; fi
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="${OUT:-$(mktemp -d /tmp/sweepbench.XXXXXX)}"
mkdir -p "$OUT"
cp "$BIN" "$OUT/sipplauncher"
python3 benches/gen_suite.py "$OUT/suite" --call "$TESTS" >/dev/null
echo "sweep bench: rounds $ROUNDS, sizes $SIZES, dry $DRY, output in $OUT" >&2

# One round (in the lab's runner namespace unless DRY): A and B in the given order.
cat >"$OUT/round.sh" <<'EOF'
#!/usr/bin/env bash
set -u
OUT=$1 ROUND=$2 DRY=$3 ORDER=$4 TESTS=$5; shift 5
SIZES="$*"
now() { date +%s.%N; }
common=(--testsuite "$OUT/suite" --group-pause 0 --sipp-call-rate 1000
        --run-root "$OUT/runs" --log-file "$OUT/r$ROUND.log")
if [ "$DRY" = 1 ]; then common+=(--dut 10.99.0.1 --dry-run); else common+=(--dut 10.99.0.1); fi
sweep() {
    local d="$OUT/r$ROUND-sweep" t0 t1
    rm -rf "$d"
    t0=$(now)
    "$OUT/sipplauncher" sweep "${common[@]}" --groups "${SIZES// /,}" --out "$d" >"$OUT/r$ROUND-sweep.out" 2>&1
    echo "status $?" >>"$OUT/r$ROUND-sweep.out"
    t1=$(now)
    echo "$t0 $t1" >"$OUT/r$ROUND-sweep.wall"
}
by_hand() {
    local d="$OUT/r$ROUND-hand" t0 t1 g total
    rm -rf "$d"; mkdir -p "$d"
    t0=$(now)
    for g in $SIZES; do
        total=$((4 * g)); [ "$total" -ge "$TESTS" ] || total=$TESTS
        "$OUT/sipplauncher" "${common[@]}" --group "$g" --total "$total" \
            --json "$d/group-$g.json" >"$d/group-$g.log" 2>&1
    done
    t1=$(now)
    echo "$t0 $t1" >"$OUT/r$ROUND-hand.wall"
}
if [ "$ORDER" = AB ]; then sweep; by_hand; else by_hand; sweep; fi
EOF

for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=AB; else order=BA; fi
    # shellcheck disable=SC2086
    if [ "$DRY" = 1 ]; then
        bash "$OUT/round.sh" "$OUT" "$r" 1 "$order" "$TESTS" $SIZES
    else
        bash lab/lab.sh run "swb$$" -- bash "$OUT/round.sh" "$OUT" "$r" 0 "$order" "$TESTS" $SIZES \
            >"$OUT/lab-r$r.log" 2>&1 || true
    fi
done

python3 - "$OUT" "$ROUNDS" "$SIZES" <<'PY'
import json, os, statistics, sys
out, rounds, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def wall(r, kind):
    a, b = open(os.path.join(out, f"r{r}-{kind}.wall")).read().split()
    return float(b) - float(a)
def runs(r, kind):
    d = os.path.join(out, f"r{r}-{kind}")
    reps = [json.load(open(os.path.join(d, f"group-{g}.json"))) for g in sizes]
    return sum(x["elapsed_s"] for x in reps), sum(x["summary"]["total"] for x in reps), \
        sum(x["summary"]["success"] for x in reps)
rows = []
for r in range(1, rounds + 1):
    try:
        sw, hw = wall(r, "sweep"), wall(r, "hand")
        se, sn, sp = runs(r, "sweep")
        he, hn, hp = runs(r, "hand")
    except (OSError, ValueError, KeyError) as e:
        print(f"round {r}: incomplete ({e})", file=sys.stderr)
        continue
    rows.append(dict(round=r, sweep_wall=sw, hand_wall=hw, sweep_runs=se, hand_runs=he,
                     sweep_out=sw - se, hand_out=hw - he, extra=(sw - se) - (hw - he),
                     passed=f"{sp}/{sn}, {hp}/{hn}"))
print("| round | sweep wall (s) | by hand wall (s) | sweep: outside runs (ms) | by hand: outside runs (ms) | sweep's extra (ms) | passed sweep / by hand |")
print("|---:|---:|---:|---:|---:|---:|---|")
for x in rows:
    print(f"| {x['round']} | {x['sweep_wall']:.2f} | {x['hand_wall']:.2f} | {x['sweep_out']*1000:.0f} | "
          f"{x['hand_out']*1000:.0f} | {x['extra']*1000:+.0f} | {x['passed']} |")
if rows:
    med = lambda k: statistics.median(x[k] for x in rows)
    print(f"| median | {med('sweep_wall'):.2f} | {med('hand_wall'):.2f} | {med('sweep_out')*1000:.0f} | "
          f"{med('hand_out')*1000:.0f} | {med('extra')*1000:+.0f} | |")
    print(f"\nsizes {' '.join(sizes)}: the sweep's own overhead, median over {len(rows)} rounds: "
          f"{med('extra')*1000:+.0f} ms for {len(sizes)} sizes ({med('extra')*1000/len(sizes):+.1f} ms a size)")
PY
echo "runs kept in $OUT" >&2
