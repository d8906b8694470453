#!/usr/bin/env python3
"""Benchmark of the HTML report: its size and the time to write it, with `sipplauncher report`
on generated JSON reports (no privileges, no lab), three cases side by side, their repetitions
interleaved:

  soak        10,000 runs of 20 tests, 10 failed; the JSON carries the ladders (as a run with
              --json writes them: the 10 failed runs' and one passing run's per test)
  failed      200 failed runs (of 20 tests), each with its ladder in the JSON
  failed-pcap the same 200 failed runs without ladders in the JSON, their run folders kept:
              `report` reads the 200 pcaps (our own pcap reader, UDP, Linux cooked)

A failed run's call: INVITE to the DUT, 100 Trying, INVITE relayed (sent twice: a
retransmission), 486 Busy Here back and its ACKs, 7 to 8 messages of 300-500 bytes with SDP; a
passing run's: a whole call through the DUT, 13 messages. Reported per case: the HTML's size,
the JSON's size, and the median (min, max) wall time of `sipplauncher report RUN.json --html
OUT.html` (read the JSON, draw, write), from spawn to exit.

  python3 benches/html_report.py [--repeat 5] [--bin target/release/sipplauncher] [--keep DIR]
"""

import argparse
import json
import re
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

DUT = "10.99.0.1"
SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)


def sip(first, call, cseq, branch, src, dst, body=""):
    return (
        f"{first}\r\nVia: SIP/2.0/UDP {src}:5060;branch={branch}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:alice@{src}:5060>;tag=1378SIPpTag001\r\nTo: <sip:bob@{dst}:5060>\r\n"
        f"Call-ID: {call}\r\nCSeq: {cseq}\r\nContact: <sip:alice@{src}:5060>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


def call_messages(uac, uas, call, failed):
    """(seconds, src, dst, text) of one call through the DUT."""
    inv = lambda s, d, b: sip(f"INVITE sip:bob@{uas}:5060 SIP/2.0", call, "1 INVITE", b, s, d, SDP.format(ip=uac))
    resp = lambda status, s, d, b, cseq="1 INVITE": sip(f"SIP/2.0 {status}", call, cseq, b, s, d)
    if failed:
        return [
            (0.0, uac, DUT, inv(uac, DUT, "z9hG4bK-1")),
            (0.0006, DUT, uac, resp("100 Trying", DUT, uac, "z9hG4bK-1")),
            (0.0007, DUT, uas, inv(DUT, uas, "z9hG4bK-2")),
            (0.5007, DUT, uas, inv(DUT, uas, "z9hG4bK-2")),
            (0.5009, uas, DUT, resp("486 Busy Here", uas, DUT, "z9hG4bK-2")),
            (0.5012, DUT, uas, sip(f"ACK sip:bob@{uas}:5060 SIP/2.0", call, "1 ACK", "z9hG4bK-2", DUT, uas)),
            (0.5013, DUT, uac, resp("486 Busy Here", DUT, uac, "z9hG4bK-1")),
            (0.5015, uac, DUT, sip(f"ACK sip:bob@{uas}:5060 SIP/2.0", call, "1 ACK", "z9hG4bK-1", uac, DUT)),
        ]
    out = [
        (0.0, uac, DUT, inv(uac, DUT, "z9hG4bK-1")),
        (0.0005, DUT, uac, resp("100 Trying", DUT, uac, "z9hG4bK-1")),
        (0.0006, DUT, uas, inv(DUT, uas, "z9hG4bK-2")),
        (0.0008, uas, DUT, resp("180 Ringing", uas, DUT, "z9hG4bK-2")),
        (0.0009, DUT, uac, resp("180 Ringing", DUT, uac, "z9hG4bK-1")),
        (0.0019, uas, DUT, resp("200 OK", uas, DUT, "z9hG4bK-2")),
        (0.0021, DUT, uac, resp("200 OK", DUT, uac, "z9hG4bK-1")),
        (0.0042, uac, DUT, sip(f"ACK sip:bob@{uas}:5060 SIP/2.0", call, "1 ACK", "z9hG4bK-3", uac, DUT)),
        (0.0045, DUT, uas, sip(f"ACK sip:bob@{uas}:5060 SIP/2.0", call, "1 ACK", "z9hG4bK-4", DUT, uas)),
        (0.2092, uac, DUT, sip(f"BYE sip:bob@{uas}:5060 SIP/2.0", call, "2 BYE", "z9hG4bK-5", uac, DUT)),
        (0.2096, DUT, uas, sip(f"BYE sip:bob@{uas}:5060 SIP/2.0", call, "2 BYE", "z9hG4bK-6", DUT, uas)),
        (0.2098, uas, DUT, resp("200 OK", uas, DUT, "z9hG4bK-6", "2 BYE")),
        (0.2099, DUT, uac, resp("200 OK", DUT, uac, "z9hG4bK-5", "2 BYE")),
    ]
    return out


def ladder_json(msgs, uac, uas, run_id):
    """The ladder as sipplauncher's JSON report carries it."""
    cols = {uac: 0, DUT: 1, uas: 2}
    seen = set()
    messages = []
    for t, src, dst, text in msgs:
        head = text.split("\r\n\r\n")[0].split("\r\n")
        hdr = {l.split(":", 1)[0]: l.split(":", 1)[1].strip() for l in head[1:]}
        branch = hdr["Via"].split("branch=")[1]
        key = (src, dst, head[0], hdr["Call-ID"], hdr["CSeq"], branch)
        m = {
            "t": round(t, 6), "from": cols[src], "to": cols[dst], "src_port": 5060, "dst_port": 5060,
            "transport": "UDP", "first_line": head[0], "call_id": hdr["Call-ID"], "cseq": hdr["CSeq"],
            "branch": branch, "text": text,
        }
        if key in seen:
            m["retransmission"] = True
        seen.add(key)
        messages.append(m)
    return {
        "pcap": f"sipp-{run_id}.pcap",
        "started": "2024-03-01T12:00:00.000Z",
        "endpoints": [
            {"label": "uac_ua1", "address": uac, "ua": "ua1"},
            {"label": "DUT", "address": DUT},
            {"label": "uas_ua0", "address": uas, "ua": "ua0"},
        ],
        "messages": messages,
        "omitted": 0,
    }


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def write_pcap(path, msgs, t0=1_709_294_400.0):
    """A Linux cooked (SLL) pcap of the messages over UDP, as sipplauncher's sniffer writes."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113))
        for i, (t, src, dst, text) in enumerate(msgs):
            data = text.encode()
            udp = struct.pack("!HHHH", 5060, 5060, 8 + len(data), 0) + data
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0x4000, 64, 17, 0, ip4(src), ip4(dst)) + udp
            frame = struct.pack("!HHH8sH", 4, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", 0x0800) + ip
            ts = t0 + t
            f.write(struct.pack("<IIII", int(ts), int(round((ts % 1) * 1e6)) % 1_000_000, len(frame), len(frame)))
            f.write(frame)


def make_report(out, runs, failures, tests, ladders):
    """A JSON report of `runs` runs, `failures` of them failed (spread evenly)."""
    failed_at = set(range(runs // (2 * failures), runs, max(1, runs // failures))) if failures < runs else set(range(runs))
    failed_at = set(sorted(failed_at)[:failures])
    folders = os.path.join(out, "runs")
    tests_out = []
    passing_drawn = set()
    for i in range(runs):
        name = f"test-{i % tests:03d}"
        run_id = "".join(chr(97 + (i // 26 ** k) % 26) for k in range(6))
        failed = i in failed_at
        uac, uas = f"10.99.0.{10 + i % 200}", f"10.99.1.{10 + i % 200}"
        call = f"{i}-4242@{uac}"
        run = {
            "index": i, "name": name, "run_id": run_id, "run_id_number": f"{i:012d}",
            "result": "FAIL" if failed else "SUCCESS", "state": "CLEAN", "passed": not failed,
            "started": "2024-03-01T12:00:00.000Z", "took_s": 0.51 if failed else 0.21, "cps": 1.0,
            "wall_s": 0.3, "sipp_s": 0.25,
            "reason": (
                f"uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '{call}': "
                f"while expecting '180' (index 2), received 'SIP/2.0 486 Busy Here Via: SIP/2.0/UDP {uac}:5060;branch=z9hG4bK-1 "
                f"Call-ID: {call} CSeq: 1 INVITE Content-Length: 0 '"
            ) if failed else None,
            "run_folder": os.path.join(folders, name, run_id),
            "addresses": {"uac_ua1": uac, "uas_ua0": uas},
        }
        msgs = None
        if failed or name not in passing_drawn:
            msgs = call_messages(uac, uas, call, failed)
            if not failed:
                passing_drawn.add(name)
        if msgs and ladders == "json":
            run["ladder"] = ladder_json(msgs, uac, uas, run_id)
        if msgs and ladders == "pcap" and failed:
            os.makedirs(run["run_folder"], exist_ok=True)
            write_pcap(os.path.join(run["run_folder"], f"sipp-{run_id}.pcap"), msgs)
        tests_out.append(run)
    report = {
        "tool": "sipplauncher", "version": "0.1.0", "dut": DUT, "testsuite": "./suite",
        "command_line": ["sipplauncher", "--dut", DUT, "--total", str(runs), "--json", "run.json"],
        "dry_run": False, "group": 10, "window": False, "seed": None, "sipp_version": "v3.6.1",
        "started": "2024-03-01T12:00:00.000Z", "finished": "2024-03-01T12:30:00.000Z", "elapsed_s": 1800.0,
        "interrupted": False, "summary": {"total": runs, "success": runs - len(failed_at), "failed": len(failed_at)},
        "global": {"before": None, "after": None}, "tests": tests_out,
    }
    path = os.path.join(out, "run.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bin", default="target/release/sipplauncher")
    ap.add_argument("--keep", help="keep the generated files here")
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"{a.bin}: build it first (cargo build --release)")
    root = a.keep or tempfile.mkdtemp(prefix="html-bench.")
    cases = {
        "soak": dict(runs=10_000, failures=10, tests=20, ladders="json"),
        "failed": dict(runs=200, failures=200, tests=20, ladders="json"),
        "failed-pcap": dict(runs=200, failures=200, tests=20, ladders="pcap"),
    }
    made = {}
    for name, c in cases.items():
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        made[name] = make_report(d, **c)
    times = {n: [] for n in cases}
    for _ in range(a.repeat):
        for name, js in made.items():
            out = os.path.join(os.path.dirname(js), "report.html")
            t = time.perf_counter()
            r = subprocess.run([a.bin, "report", js, "--html", out], capture_output=True, text=True)
            times[name].append(time.perf_counter() - t)
            if r.returncode != 0:
                sys.exit(f"{name}: report failed ({r.returncode}): {r.stderr}")
    print(f"{'case':<12} {'runs':>6} {'failed':>6} {'ladders':>8} {'json':>9} {'html':>9} {'median':>8} {'min':>8} {'max':>8}")
    for name, c in cases.items():
        d = os.path.dirname(made[name])
        html = open(os.path.join(d, "report.html")).read()
        drawn = len(re.findall(r'<div class="ladder [^"]*" id=', html))
        t = times[name]
        print(
            f"{name:<12} {c['runs']:>6} {c['failures']:>6} {drawn:>8} "
            f"{os.path.getsize(made[name]) / 1e6:>7.2f}MB {len(html.encode()) / 1e6:>7.2f}MB "
            f"{statistics.median(t) * 1000:>6.0f}ms {min(t) * 1000:>6.0f}ms {max(t) * 1000:>6.0f}ms"
        )
    if not a.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
