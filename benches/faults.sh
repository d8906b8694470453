#!/usr/bin/env bash
# Faults during real runs against the lab's Kamailio (issue 6 item 3): what each affected test
# ends as (FAIL / NOT READY / DIRTY) and why, that the run goes on, and that nothing leaks.
#
#   bash benches/faults.sh [PHASE...]      (default: soak rofolder roroot dns kill; root)
#
# Each phase is one lab (lab/lab.sh run), driven by benches/faults.py inside the runner's
# namespace (see its docstring for the exact injections):
#   soak      a --loop run, --group 5, --script-timeout 2: SIGKILL of a SIPp UAC and of a SIPp
#             UAS mid-call, the DUT (Kamailio) stopped for 5 s and started again, a before.sh
#             that hangs (every run of hang-0000); then SIGINT
#   rofolder  the same run; a test's folder under the run root made immutable (chattr +i) for 10 s
#   roroot    the same run; the whole run root immutable for 3 s
#   dns       UDP port 53 taken before the run starts, released 4 s into it (dns tests in the suite)
#   kill      SIGKILL of sipplauncher with 5 calls running, then a new run on the same run root
# Prints the fault matrix (markdown; also in $OUT/faults.md) from the JSON reports, the
# injector's events.log and what was left after each run. OUT: a fresh temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PHASES=("$@")
[ ${#PHASES[@]} -gt 0 ] || PHASES=(soak rofolder roroot dns kill)
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="${OUT:-$(mktemp -d /tmp/faults.XXXXXX)}"
mkdir -p "$OUT"
cp "$BIN" "$OUT/sipplauncher"
python3 benches/gen_suite.py "$OUT/suite-soak" --call 3 --options 3 --dns 1 --victim 2 --hang 1
cp -r "$OUT/suite-soak/call-0000" "$OUT/suite-soak/rofolder-0000"
python3 benches/gen_suite.py "$OUT/suite-dns" --dns 2 --call 1
python3 benches/gen_suite.py "$OUT/suite-kill" --long 5 --pause-ms 8000 --options 1
echo "faults: phases ${PHASES[*]}, output in $OUT" >&2
for ph in "${PHASES[@]}"; do
    LAB="flt$$$ph"
    bash lab/lab.sh run "${LAB:0:20}" -- python3 benches/faults.py "$OUT" "${LAB:0:20}" "$ph" \
        >"$OUT/lab-$ph.log" 2>&1 || true
    # The lab is down; whatever chattr +i the injector left (it undoes it in `finally`).
    chattr -R -i "$OUT/$ph/runs" 2>/dev/null || true
done

python3 - "$OUT" "${PHASES[@]}" <<'PY'
import json, os, sys
from collections import Counter, defaultdict
out, phases = sys.argv[1], sys.argv[2:]
text = []
for ph in phases:
    d = os.path.join(out, ph)
    text.append(f"### phase {ph}\n")
    text.append("Injector's log (seconds since its start):\n\n```")
    text += [l.rstrip()[:400] for l in open(os.path.join(d, "events.log"))]
    text.append("```\n")
    for run in sorted(os.listdir(d)):
        rd = os.path.join(d, run)
        rep = os.path.join(rd, "report.json")
        if not os.path.isfile(os.path.join(rd, "summary.json")):
            continue
        summ = json.load(open(os.path.join(rd, "summary.json")))
        text.append(f"Run `{run}`: exit status {summ['status']}, {summ['states']['CLEANING'] + summ['states']['NOT READY']} runs done "
                    f"(lines: {summ['states']})")
        if os.path.exists(rep):
            r = json.load(open(rep))
            tests = r["tests"]
            text.append(f"JSON: interrupted={r['interrupted']}, summary {r['summary']}; "
                        f"global after: {r['global']['after']}")
            by = defaultdict(Counter)
            for t in tests:
                key = (t["name"].rsplit("-", 1)[0], t["state"], t["result"], (t["reason"] or "")[:260])
                by[key[0]][key[1:]] += 1
            text.append("\n| tests | state | result | runs | reason |\n|---|---|---|---:|---|")
            for name in sorted(by):
                for (st, res, why), k in sorted(by[name].items(), key=lambda x: -x[1]):
                    text.append(f"| {name}-* | {st} | {res} | {k} | {why.replace('|', '/')} |")
        else:
            text.append("(no JSON report: the process was killed)")
        aj = os.path.join(rd, "after.json")
        if os.path.exists(aj):
            text.append(f"\nAfter it: `{json.dumps(json.load(open(aj)))[:1500]}`")
        last = summ["after_exit"]
        text.append(f"Watcher's last sample: links {last['run_links']}+{last['spare_links']} spare, addresses {last['sipp_addrs']}, "
                    f"processes in the namespace {last['procs_in_ns']}, run folders {last['run_folders']}; "
                    f"DNS: {summ['dns_neg_ok']} finished look-ups REFUSED, leaked {summ['dns_leaked']}\n")
t = "\n".join(text) + "\n"
open(os.path.join(out, "faults.md"), "w").write(t)
print(t)
PY
