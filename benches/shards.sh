#!/usr/bin/env bash
# One process against N shards on N "machines", side by side (issue 12), and the merge time.
#
#   bash benches/shards.sh [ROUNDS]       (default 3; root; needs a release build)
#
# A generated suite of TESTS (default 300) one-call tests (benches/gen_suite.py --call: ua1
# calls ua0 through the lab's Kamailio, 200 ms between ACK and BYE), capture on, --group GROUP
# (default 10), --group-pause 0, --sipp-call-rate 1000. Per round, one scale-out lab
# (LAB_RUNNERS=SHARDS lab/lab.sh up: SHARDS runner namespaces on one bridge with the DUT, as
# SHARDS machines on its link), and in it, in an order that alternates between rounds:
#   one     the whole suite by one sipplauncher in runner 1;
#   shards  --shard K/SHARDS in runner K, all at once, then `sipplauncher merge` of their
#           reports (--json --junit).
# Wall time is taken from outside (start of the first process to the end of the last, the
# merge not included; the merge's own time apart). From the reports: runs, failures,
# sipplauncher's CPU and its children's (SIPp), the load before.
# Then the merge alone: SHARDS reports of MERGE_RUNS (default 10,000) runs each, made from a
# shard report of the last round (its runs repeated, with their indices renumbered), merged
# MERGE_REPEAT (default 5) times to --json --junit, and as many times to --json --junit --html,
# interleaved; medians.
# Medians over the rounds; a markdown table on stdout and in $OUT/shards.md. OUT: a fresh
# temporary folder. The lab is taken down after each round, and on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
TESTS="${TESTS:-300}"
SHARDS="${SHARDS:-3}"
GROUP="${GROUP:-10}"
MERGE_RUNS="${MERGE_RUNS:-10000}"
MERGE_REPEAT="${MERGE_REPEAT:-5}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="${OUT:-$(mktemp -d /tmp/shards.XXXXXX)}"
mkdir -p "$OUT"
cp "$BIN" "$OUT/sipplauncher"
python3 benches/gen_suite.py "$OUT/suite" --call "$TESTS"
NAME="shd$$"
trap 'bash lab/lab.sh down "$NAME" >/dev/null 2>&1 || true' EXIT
echo "shards bench: $TESTS tests, $SHARDS shards, --group $GROUP, rounds $ROUNDS; output in $OUT" >&2

now() { date +%s.%N; }

# One sipplauncher in runner $2 of the lab, its files in $1, more arguments after.
launch() {
    local d=$1 runner=$2
    shift 2
    mkdir -p "$d"
    LAB_RUNNER=$runner timeout 600 bash lab/lab.sh exec "$NAME" -- "$OUT/sipplauncher" \
        --dut 10.99.0.1 --testsuite "$OUT/suite" --group "$GROUP" --group-pause 0 \
        --sipp-call-rate 1000 --run-root "$d/runs" --log-file "$d/sipplauncher.log" "$@" \
        >"$d/stdout" 2>&1
}

one() {
    local d="$OUT/r$1-one" t0
    rm -rf "$d"
    t0=$(now)
    launch "$d" 1 --json "$d/report.json" && echo 0 >"$d/exit" || echo $? >"$d/exit"
    echo "$t0 $(now)" >"$d/wall"
}

shards() {
    local d="$OUT/r$1-shards" t0 k pids=() m0
    rm -rf "$d"
    mkdir -p "$d"
    t0=$(now)
    for ((k = 1; k <= SHARDS; k++)); do
        (launch "$d/shard-$k" "$k" --shard "$k/$SHARDS" --json "$d/shard-$k.json" &&
            echo 0 >"$d/shard-$k/exit" || echo $? >"$d/shard-$k/exit") &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    echo "$t0 $(now)" >"$d/wall"
    m0=$(now)
    "$OUT/sipplauncher" merge --json "$d/merged.json" --junit "$d/merged.xml" \
        "$d"/shard-*.json >"$d/merge.stdout" 2>&1 && echo 0 >"$d/merge.exit" || echo $? >"$d/merge.exit"
    echo "$m0 $(now)" >"$d/merge.wall"
}

for ((r = 1; r <= ROUNDS; r++)); do
    cut -d' ' -f1 /proc/loadavg >"$OUT/r$r-load"
    LAB_RUNNERS=$SHARDS bash lab/lab.sh up "$NAME" >"$OUT/lab-r$r.log" 2>&1
    if ((r % 2)); then
        one "$r"
        sleep 1
        shards "$r"
    else
        shards "$r"
        sleep 1
        one "$r"
    fi
    bash lab/lab.sh down "$NAME" >>"$OUT/lab-r$r.log" 2>&1
done

# The merge of SHARDS reports of MERGE_RUNS runs each.
python3 - "$OUT" "$ROUNDS" "$SHARDS" "$MERGE_RUNS" <<'PY'
import copy, json, os, sys
out, rounds, shards, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
src = json.load(open(os.path.join(out, f"r{rounds}-shards", "shard-1.json")))
runs = src["tests"]
os.makedirs(os.path.join(out, "merge"), exist_ok=True)
for k in range(1, shards + 1):
    rep = copy.deepcopy(src)
    rep["shard"] = {"index": k, "total": shards, "mode": "count"}
    tests = []
    for i in range(n):
        t = dict(runs[i % len(runs)])
        t["index"], t["shard"] = i, k
        if i >= len(runs):
            # A ladder comes with the first runs of a test (and failures) only.
            t.pop("ladder", None)
            t.pop("ladder_error", None)
        tests.append(t)
    rep["tests"] = tests
    passed = sum(1 for t in tests if t["passed"])
    rep["summary"] = {"total": n, "success": passed, "failed": n - passed}
    json.dump(rep, open(os.path.join(out, "merge", f"shard-{k}.json"), "w"))
PY
for ((i = 1; i <= MERGE_REPEAT; i++)); do
    for what in plain html; do
        extra=()
        [ "$what" = html ] && extra=(--html "$OUT/merge/merged.html")
        t0=$(now)
        "$OUT/sipplauncher" merge --json "$OUT/merge/merged.json" --junit "$OUT/merge/merged.xml" \
            "${extra[@]}" "$OUT"/merge/shard-*.json >"$OUT/merge/$what-$i.stdout" 2>&1 || true
        echo "$t0 $(now)" >"$OUT/merge/$what-$i.wall"
    done
done

python3 - "$OUT" "$ROUNDS" "$SHARDS" "$TESTS" "$MERGE_RUNS" "$MERGE_REPEAT" <<'PY' | tee "$OUT/shards.md"
import json, os, statistics, sys
out, rounds, shards, tests, mruns, mrep = sys.argv[1], *map(int, sys.argv[2:])
def wall(p):
    a, b = open(p).read().split()
    return float(b) - float(a)
def report(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None
def cpu(rep):
    u = (rep or {}).get("usage") or {}
    return (u.get("cpu_user_s", 0) + u.get("cpu_system_s", 0),
            u.get("children_cpu_user_s", 0) + u.get("children_cpu_system_s", 0))
rows = {"one": [], "shards": []}
for r in range(1, rounds + 1):
    load = float(open(os.path.join(out, f"r{r}-load")).read())
    d = os.path.join(out, f"r{r}-one")
    rep = report(os.path.join(d, "report.json"))
    w = wall(os.path.join(d, "wall"))
    own, kids = cpu(rep)
    t = rep["tests"] if rep else []
    rows["one"].append({"wall": w, "runs": len(t), "fail": sum(1 for x in t if not x["passed"]),
                        "own": own, "kids": kids, "load": load, "shard_walls": "",
                        "exit": open(os.path.join(d, "exit")).read().strip(), "merge": None})
    d = os.path.join(out, f"r{r}-shards")
    w = wall(os.path.join(d, "wall"))
    reps = [report(os.path.join(d, f"shard-{k}.json")) for k in range(1, shards + 1)]
    runs = sum(len(x["tests"]) for x in reps if x)
    fail = sum(1 for x in reps if x for t in x["tests"] if not t["passed"])
    own = sum(cpu(x)[0] for x in reps)
    kids = sum(cpu(x)[1] for x in reps)
    walls = " / ".join(f"{x['elapsed_s']:.1f}" for x in reps if x)
    merged = report(os.path.join(d, "merged.json"))
    exits = [open(os.path.join(d, f"shard-{k}", "exit")).read().strip() for k in range(1, shards + 1)]
    rows["shards"].append({"wall": w, "runs": runs, "fail": fail, "own": own, "kids": kids,
                           "load": load, "shard_walls": walls, "exit": ",".join(exits),
                           "merge": wall(os.path.join(d, "merge.wall")),
                           "merged_total": merged["summary"]["total"] if merged else None})
print(f"| mode | round | load before | runs | failures | wall (s) | tests/s | each shard's elapsed (s) | CPU sipplauncher (s) | CPU SIPp (s) | merge (s) | exit |")
print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
for mode in ("one", "shards"):
    for r, x in enumerate(rows[mode], 1):
        m = f"{x['merge']:.2f}" if x["merge"] is not None else ""
        print(f"| {mode} | {r} | {x['load']:.1f} | {x['runs']} | {x['fail']} | {x['wall']:.1f} | {x['runs'] / x['wall']:.1f} "
              f"| {x['shard_walls']} | {x['own']:.2f} | {x['kids']:.2f} | {m} | {x['exit']} |")
print()
med = lambda mode, k: statistics.median(x[k] for x in rows[mode])
tps = lambda mode: statistics.median(x["runs"] / x["wall"] for x in rows[mode])
print(f"Medians over {rounds} rounds: one process {med('one', 'wall'):.1f} s ({tps('one'):.1f} tests/s), "
      f"{shards} shards {med('shards', 'wall'):.1f} s ({tps('shards'):.1f} tests/s), "
      f"speed-up {med('one', 'wall') / med('shards', 'wall'):.2f}x; CPU (sipplauncher + SIPp) "
      f"{med('one', 'own') + med('one', 'kids'):.1f} s against {med('shards', 'own') + med('shards', 'kids'):.1f} s.")
print()
def walls(what):
    return sorted(wall(os.path.join(out, "merge", f"{what}-{i}.wall")) for i in range(1, mrep + 1))
plain, html = walls("plain"), walls("html")
size = sum(os.path.getsize(os.path.join(out, "merge", f"shard-{k}.json")) for k in range(1, shards + 1))
print(f"Merge of {shards} reports of {mruns:,} runs each ({size / 1e6:.1f} MB of JSON), {mrep} times each, interleaved: "
      f"--json --junit median {statistics.median(plain):.2f} s (min {plain[0]:.2f}, max {plain[-1]:.2f}); "
      f"with --html too median {statistics.median(html):.2f} s (min {html[0]:.2f}, max {html[-1]:.2f}).")
PY
