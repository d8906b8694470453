#!/usr/bin/env bash
# Benchmark: answers per second of sipplauncher's embedded DNS server, on loopback, inside a
# private network namespace. A one-test run whose before.sh runs dnsperf (Debian: dnsperf)
# against the server for a few seconds while the test's records are served; the test's
# OPTIONS UAC then pings a stand-in DUT on 127.0.0.1 that nobody answers (so the test FAILs
# quickly; only the DNS figure matters).
#   bash benches/dns.sh [SECONDS]      (root; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-5}"
BIN="${BIN:-$PWD/target/release/sipplauncher}"
[ -x "$BIN" ] || cargo build --release
command -v dnsperf >/dev/null || { echo "dns bench: apt-get install dnsperf" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/suite/dns"
cat >"$work/suite/dns/dns.txt" <<'Z'
a.bench.example.com.  A    {{ ua0.host }}
_sip._udp.bench.example.com.  SRV  [10, 60, 5060, "a.bench.example.com."]
Z
printf 'a.bench.example.com A\n_sip._udp.bench.example.com SRV\nnot.served.example.org A\n' >"$work/queries"
cat >"$work/suite/dns/before.sh" <<B
dnsperf -s 127.0.0.1 -d $work/queries -l $SECS -c 4 -Q 200000 > $work/dnsperf.out 2>&1
B
cat >"$work/suite/dns/uac_ua0.xml" <<'X'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ping">
  <send><![CDATA[
OPTIONS sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:b@[local_ip]>;tag=[call_number]
To: <sip:127.0.0.1>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Content-Length: 0
]]></send>
  <recv response="200"/>
</scenario>
X
unshare -n sh -c "ip link set lo up && '$BIN' --dut 127.0.0.1 --testsuite '$work/suite' \
    --run-root '$work/runs' --log-file '$work/log' --no-pcap --sipp-recv-timeout 200 \
    --script-timeout $((SECS + 30))" >/dev/null 2>&1 || true
grep -E "Queries sent|Queries completed|Response codes|Queries per second|Average Latency" "$work/dnsperf.out"
