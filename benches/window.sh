#!/usr/bin/env bash
# Groups against --window, side by side (SPEC §12: groups behind a barrier wait for their
# slowest test).
#
#   bash benches/window.sh [ROUNDS]       (default 3; root; needs a release build)
#
# A generated suite of 40 calls through the lab's Kamailio whose UAC waits 200 ms to 2 s between
# ACK and BYE (benches/gen_suite.py --mixed: the tests of one group end apart), capture on,
# --group-pause 0, --sipp-call-rate 1000, --total max(4 x group, 40). Per round (one lab), at
# --group 10 and 50, one run in groups and one with --window, in an order that alternates
# between rounds. Per run, from the JSON report: tests per second (runs / elapsed), the mean
# number of tests whose SIPp runs at once (sum of SIPp times / elapsed: how busy the DUT is
# kept), per-test overhead (wall - SIPp time; median, p95) and failures. Medians over the
# rounds; a markdown table on stdout and in $OUT/window.md. OUT: a fresh temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
SIZES="${SIZES:-10 50}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="${OUT:-$(mktemp -d /tmp/window.XXXXXX)}"
mkdir -p "$OUT"
cp "$BIN" "$OUT/sipplauncher"
python3 benches/gen_suite.py "$OUT/suite" --mixed 40
echo "window bench: rounds $ROUNDS, sizes $SIZES, output in $OUT" >&2

cat >"$OUT/round.sh" <<'SH'
#!/usr/bin/env bash
set -u
OUT=$1 ROUND=$2; shift 2
for run in "$@"; do
    g=${run%:*} mode=${run#*:}
    total=$((4 * g)); [ "$total" -ge 40 ] || total=40
    d="$OUT/r$ROUND-g$g-$mode"
    rm -rf "$d"; mkdir -p "$d"
    extra=()
    [ "$mode" = window ] && extra=(--window)
    echo "round $ROUND: --group $g --total $total $mode" >&2
    timeout 300 "$OUT/sipplauncher" --dut 10.99.0.1 --testsuite "$OUT/suite" \
        --group "$g" --total "$total" --group-pause 0 --sipp-call-rate 1000 "${extra[@]}" \
        --run-root "$d/runs" --log-file "$d/sipplauncher.log" --json "$d/report.json" \
        >"$d/stdout" 2>&1
    echo "$?" >"$d/exit"
    sleep 1
done
SH

read -r -a sizes <<<"$SIZES"
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    for g in "${sizes[@]}"; do
        if ((r % 2)); then order+=("$g:groups" "$g:window"); else order+=("$g:window" "$g:groups"); fi
    done
    bash lab/lab.sh run "win$$" -- bash "$OUT/round.sh" "$OUT" "$r" "${order[@]}" \
        >"$OUT/lab-r$r.log" 2>&1 || true
done

python3 - "$OUT" "$ROUNDS" "$SIZES" <<'PY' | tee "$OUT/window.md"
import json, os, statistics, sys
out, rounds, sizes = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split()]
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
print("| --group | mode | runs | tests/s | SIPp under way (mean) | overhead median (ms) | overhead p95 (ms) | failures | exit |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
for g in sizes:
    for mode in ("groups", "window"):
        rows = []
        for r in range(1, rounds + 1):
            d = os.path.join(out, f"r{r}-g{g}-{mode}")
            try:
                rep = json.load(open(os.path.join(d, "report.json")))
            except (OSError, ValueError):
                continue
            t = rep["tests"]
            el = rep["elapsed_s"]
            sipp = [x["sipp_s"] for x in t if x.get("sipp_s") is not None]
            ov = [(x["wall_s"] - x["sipp_s"]) * 1000 for x in t if x.get("sipp_s") is not None]
            rows.append({"runs": len(t), "tps": len(t) / el, "busy": sum(sipp) / el,
                         "ov50": pct(ov, .5), "ov95": pct(ov, .95),
                         "fail": sum(1 for x in t if not x["passed"]),
                         "exit": open(os.path.join(d, "exit")).read().strip()})
        if not rows:
            continue
        med = lambda k: statistics.median(x[k] for x in rows)
        print(f"| {g} | {mode} | {rows[0]['runs']} x {len(rows)} | {med('tps'):.1f} | {med('busy'):.1f} "
              f"| {med('ov50'):.0f} | {med('ov95'):.0f} | {sum(x['fail'] for x in rows)} "
              f"| {sorted(set(x['exit'] for x in rows))} |")
PY
