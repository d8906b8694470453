#!/usr/bin/env bash
# Benchmark: real runs at growing --group sizes against the lab's Kamailio (issue 6 item 1).
#
#   bash benches/groups.sh [ROUNDS]        (default 3; root; needs a release build)
#
# A generated suite of 200 one-call tests (call-NNNN: ua1 calls ua0 of the same test through the
# DUT, the example suite's place_call/answer_call macros, 200 ms between ACK and BYE, no
# scripts), capture on, --group-pause 0, --sipp-call-rate 1000, run at --group 1 10 50 100 200
# with --total max(4 x group, 50). Each round is one lab (lab/lab.sh run), the sizes in a
# rotated order per round, so that every size sees the same machine; the figures are the medians
# over the rounds. Per run, benches/procwatch.py samples sipplauncher every 0.2 s from outside
# (peak RSS = VmHWM; its own CPU time read from its zombie; the CPU of its reaped children, SIPp
# and scripts, separately) and the JSON report gives the per-test overhead wall_s - sipp_s.
#
# Addresses: 200 tests x 2 UAs do not fit in the lab's /24 (251 free addresses), so the runs use
# --network-mask 23 (510 addresses) and a route 10.99.0.0/23 on the DUT's side of the veth (the
# runner answers ARP for the addresses on its sipp-* links). Not wider: every address a test
# used is an ARP entry in the DUT's namespace, and the kernel's ARP table is one for all
# namespaces (gc_thresh3 = 1024 entries by default): with /16, a few runs of random addresses
# overflow it ("neighbour: arp_cache: neighbor table overflow!"; packets to new neighbours are
# dropped, also the host's). One more run at --group 200 with the default /24 shows where that
# breaks (GROUPS_BREAK24=0 to skip it).
#
# Output: a markdown table on stdout and in $OUT/groups.md, the raw rows in benches/groups.csv,
# the plot benches/groups.svg (benches/plot_groups.py). Environment: SIZES ("1 10 50 100 200"),
# OUT (a fresh temporary folder), BIN (target/release/sipplauncher, copied before the runs so that
# a rebuild meanwhile does not change it), MASK (23).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
SIZES="${SIZES:-1 10 50 100 200}"
MASK="${MASK:-23}"
BREAK24="${GROUPS_BREAK24:-1}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="${OUT:-$(mktemp -d /tmp/groups.XXXXXX)}"
mkdir -p "$OUT"
cp "$BIN" "$OUT/sipplauncher"
python3 benches/gen_suite.py "$OUT/suite" --call 200
LAB="grp$$"
echo "groups bench: rounds $ROUNDS, sizes $SIZES, output in $OUT" >&2

# One round, run inside the lab's runner namespace: every size once, in the given order.
cat >"$OUT/round.sh" <<'EOF'
#!/usr/bin/env bash
set -u
OUT=$1 ROUND=$2 LAB=$3 MASK=$4; shift 4
if [ "$MASK" != 24 ]; then
    ip -n "$LAB-dut" route add "10.99.0.0/$MASK" dev lab-dut
fi
for g in "$@"; do
    total=$((4 * g)); [ "$total" -ge 50 ] || total=50
    d="$OUT/r$ROUND-g$g-m$MASK"
    rm -rf "$d"; mkdir -p "$d"
    cut -d' ' -f1 /proc/loadavg >"$d/loadavg"   # the shared machine's load before the run
    echo "round $ROUND: --group $g --total $total (/$MASK)" >&2
    timeout 540 python3 "$OUT/procwatch.py" --out "$d" --interval 0.2 --run-root "$d/runs" -- \
        "$OUT/sipplauncher" --dut 10.99.0.1 --network-mask "$MASK" --testsuite "$OUT/suite" \
        --group "$g" --total "$total" --group-pause 0 --sipp-call-rate 1000 \
        --run-root "$d/runs" --log-file "$d/sipplauncher.log" --json "$d/report.json"
    echo "$?" >"$d/exit"
    sleep 1
done
cp "/run/sipplauncher-lab/$LAB/kamailio.log" "$OUT/kamailio-r$ROUND-m$MASK.log" 2>/dev/null || true
EOF
cp benches/procwatch.py "$OUT/procwatch.py"

read -r -a sizes <<<"$SIZES"
n=${#sizes[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${sizes[$(((i + r - 1) % n))]}"); done
    bash lab/lab.sh run "$LAB" -- bash "$OUT/round.sh" "$OUT" "$r" "$LAB" "$MASK" "${order[@]}" \
        >"$OUT/lab-r$r.log" 2>&1 || true
done
if [ "$BREAK24" = 1 ] && [ "$MASK" != 24 ]; then
    bash lab/lab.sh run "$LAB" -- bash "$OUT/round.sh" "$OUT" 1 "$LAB" 24 200 >"$OUT/lab-break24.log" 2>&1 || true
fi

python3 benches/groups_report.py "$OUT" "$ROUNDS" "$MASK" "$SIZES"
python3 benches/plot_groups.py benches/groups.csv benches/groups.svg "$MASK"
echo "plot: benches/groups.svg; raw rows: benches/groups.csv; runs kept in $OUT" >&2
