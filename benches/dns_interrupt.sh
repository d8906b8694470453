#!/usr/bin/env bash
# A SIGINT during the pre-run of a test whose dns.txt holds 200,000 records (issue 13.1): from
# the signal to sipplauncher's exit.
#
#   bash benches/dns_interrupt.sh [N]      (default 9 rounds; dry runs: no root, no lab)
#
# One test, `big`: a dns.txt of 200,000 A records and a one-line scenario. Per round, each kind
# once, interleaved:
#   none: no signal: from the PREPARING line to the exit (what reading the file takes: how long
#         a first signal waited when the reading did not look at it);
#   one:  SIGINT 100 ms after the PREPARING line: from the signal to the exit;
#   two:  the same and a second SIGINT 20 ms after the first: from the first to the exit.
# LAB=1 (root): real runs in a lab (lab/lab.sh: Kamailio as the DUT), where the records go to the
# embedded DNS server too, and a fourth kind:
#   add:  SIGINT as soon as the general log says the records were read (`authoritative for`),
#         so while the DnsActor adds them: from the signal to the exit.
# Median, min and max per kind, and the test's last state line. BIN: the build to measure
# (default target/release/sipplauncher); BIN_BEFORE: another build, measured alongside in the
# same rounds (e.g. the build before a change).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-9}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
OUT="$(mktemp -d /tmp/dns_interrupt.XXXXXX)"
LAB_NAME=""
if [ "${LAB:-0}" = 1 ]; then
    LAB_NAME="sl$(printf '%06d' $((RANDOM * RANDOM % 1000000)) | tr 0-9 a-j)"
    export LAB_NET="10.99.$((RANDOM % 250 + 2))"
    bash lab/lab.sh up "$LAB_NAME" >"$OUT/lab.log" 2>&1 || { cat "$OUT/lab.log"; exit 1; }
fi
trap '[ -z "$LAB_NAME" ] || bash lab/lab.sh down "$LAB_NAME" >/dev/null 2>&1; rm -rf "$OUT"' EXIT
mkdir -p "$OUT/suite/big" "$OUT/runs"
chmod 700 "$OUT/runs"
python3 - "$OUT/suite/big/dns.txt" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(200_000):
        f.write(f"h{i}.example.com.  A  10.0.{(i >> 8) & 255}.{i & 255}\n")
PY
cat >"$OUT/suite/big/uac_ua0.xml" <<'XML'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ping">
  <send><![CDATA[
OPTIONS sip:{{ dut.host }} SIP/2.0
Via: SIP/2.0/[transport] {{ ua0.host }}:[local_port];branch=[branch]
From: <sip:ping@{{ ua0.host }}>;tag=[call_number]
To: <sip:{{ dut.host }}>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
XML
python3 - "$OUT" "$N" "$LAB_NAME" "${LAB_NET:-}" "$BIN" "${BIN_BEFORE:-}" <<'PY'
import os, signal, statistics, subprocess, sys, time
out, n, lab, net = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
bins = [b for b in sys.argv[5:] if b]
names = ["BIN"] + (["BIN_BEFORE"] if len(bins) > 1 else [])
kinds = ["none", "one", "two"] + (["add"] if lab else [])

def once(binary, kind):
    log = f"{out}/log-{kind}"
    if os.path.exists(log):
        os.remove(log)
    where = (["ip", "netns", "exec", f"{lab}-run"], f"{net}.1", []) if lab else \
        ([], "127.0.0.1", ["--dry-run"])
    # `ip netns exec` execs sipplauncher: the pid signalled is sipplauncher's.
    p = subprocess.Popen(
        where[0] + [binary, "--dut", where[1], "--testsuite", f"{out}/suite", "--run-root",
         f"{out}/runs", "--log-file", log, "--group-pause", "0", "--keep", "none"] + where[2],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if "PREPARING" in line and " big " in line:
            break
    start = time.monotonic()
    if kind == "add":
        while "authoritative for" not in open(log, errors="replace").read()[-20000:]:
            time.sleep(0.002)
        start = time.monotonic()
        p.send_signal(signal.SIGINT)
    elif kind != "none":
        time.sleep(0.1)
        start = time.monotonic()
        p.send_signal(signal.SIGINT)
        if kind == "two":
            time.sleep(0.02)
            p.send_signal(signal.SIGINT)
    rest = p.stdout.read()
    p.wait()
    took = time.monotonic() - start
    last = [l.strip() for l in rest.splitlines() if " big (" in l]
    return took, p.returncode, (last[-1] if last else "")

results = {}
for r in range(n):
    for name, binary in zip(names, bins):
        for kind in kinds:
            took, status, last = once(binary, kind)
            results.setdefault((name, kind), []).append((took, status, last))
            print(f"round {r + 1} {name} {kind}: {took * 1000:.0f} ms, exit {status}: {last}",
                  flush=True)
print()
print("| build | kind | runs | median (ms) | min | max | exit | last state line |")
print("|---|---|---:|---:|---:|---:|---|---|")
for (name, kind), rs in results.items():
    ms = [t * 1000 for t, _, _ in rs]
    exits = sorted({s for _, s, _ in rs})
    print(f"| {name} | {kind} | {len(ms)} | {statistics.median(ms):.0f} | {min(ms):.0f} | "
          f"{max(ms):.0f} | {exits} | {rs[-1][2]} |")
PY
