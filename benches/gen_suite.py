#!/usr/bin/env python3
"""Writes a generated test suite for the bench scripts, built on the example suite's macros
(tmp-testsuite/TEMPLATES/sip.jinja2, copied as is) and its users.csv.

    gen_suite.py DIR [--call N] [--options N] [--dns N] [--scripted N] [--long N --pause-ms MS]
                     [--hang N] [--kill-target N]

  call-NNNN      ua1 calls ua0 through the DUT (place_call / answer_call), no scripts
  options-NNNN   an OPTIONS ping to the DUT (options)
  dns-NNNN       ua1 calls svc-<run_id>.example.com: the DUT finds ua0 with the test's dns.txt
                 (SRV, then A), like tmp-testsuite/dns-0000
  scripted-NNNN  a call with a before.sh and an after.sh (like tmp-testsuite/call-0000)
  long-NNNN      a call whose UAC waits --pause-ms between ACK and BYE (SIPp runs for seconds)
  hang-NNNN      a call whose before.sh sleeps for an hour (past any --script-timeout)
  victim-NNNN    a call whose UAC waits 3 s between ACK and BYE (time to kill its SIPp)
  mixed-NNNN     a call whose UAC waits 200 ms to 2 s between ACK and BYE (spread over the
                 tests: 200 ms x (1 + i * 7 mod 10)), so that tests of one group end apart
"""
import argparse
import os
import shutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="{{ test.name }}: answer at {{ ua0.host }}">
  {{ sip.answer_call() }}
</scenario>
"""

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="{{ test.name }}: call {{ ua0.host }} through {{ dut.host }}">
  {{ sip.place_call('sip:[field0]@' ~ ua0.host ~ ':5060', test.name ~ ' ' ~ test.run_id) }}
</scenario>
"""

# The same call with a longer pause between ACK and BYE (bench.jinja2 = sip.jinja2 whose
# place_call takes the pause as a third argument).
UAC_PAUSE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'bench.jinja2' as sip -%}
<scenario name="{{ test.name }}: call {{ ua0.host }} through {{ dut.host }}">
  {{ sip.place_call('sip:[field0]@' ~ ua0.host ~ ':5060', test.name ~ ' ' ~ test.run_id, PAUSE) }}
</scenario>
"""

OPTIONS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="{{ test.name }}: OPTIONS ping to {{ dut.host }}">
  {{ sip.options('sip:ping@' ~ dut.host ~ ':5060') }}
</scenario>
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    for k in ("call", "options", "dns", "scripted", "long", "hang", "victim", "mixed"):
        ap.add_argument(f"--{k}", type=int, default=0)
    ap.add_argument("--pause-ms", type=int, default=8000)
    ap.add_argument("--short-calls", type=int, metavar="MS",
                    help="call, dns and scripted tests wait MS (not 200) between ACK and BYE")
    a = ap.parse_args()
    d = a.dir
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "TEMPLATES"))
    src = os.path.join(REPO, "tmp-testsuite")
    shutil.copy(os.path.join(src, "TEMPLATES", "sip.jinja2"), os.path.join(d, "TEMPLATES", "sip.jinja2"))
    shutil.copy(os.path.join(src, "users.csv"), os.path.join(d, "users.csv"))
    macros = open(os.path.join(src, "TEMPLATES", "sip.jinja2")).read()
    bench = macros.replace("{% macro place_call(uri, subject) -%}", "{% macro place_call(uri, subject, pause_ms=200) -%}")
    bench = bench.replace('<pause milliseconds="200"/>', '<pause milliseconds="{{ pause_ms }}"/>')
    assert bench.count("pause_ms") == 2, "sip.jinja2's place_call changed: update gen_suite.py"
    write(os.path.join(d, "TEMPLATES", "bench.jinja2"), bench)
    dns_dir = os.path.join(src, "dns-0000")
    uac = UAC if a.short_calls is None else UAC_PAUSE.replace("PAUSE", str(a.short_calls))
    for i in range(a.call):
        t = os.path.join(d, f"call-{i:04d}")
        write(os.path.join(t, "uas_ua0.xml"), UAS)
        write(os.path.join(t, "uac_ua1.xml"), uac)
    for i in range(a.options):
        write(os.path.join(d, f"options-{i:04d}", "uac_ua0.xml"), OPTIONS)
    for i in range(a.dns):
        t = os.path.join(d, f"dns-{i:04d}")
        os.makedirs(t)
        for f in ("dns.txt", "uas_ua0.xml", "uac_ua1.xml"):
            shutil.copy(os.path.join(dns_dir, f), os.path.join(t, f))
        if a.short_calls is not None:
            text = open(os.path.join(t, "uac_ua1.xml")).read()
            text = text.replace("{% import 'sip.jinja2' as sip -%}", "{% import 'bench.jinja2' as sip -%}")
            text = text.replace("test.name ~ ' ' ~ test.run_id)", f"test.name ~ ' ' ~ test.run_id, {a.short_calls})")
            assert str(a.short_calls) in text, "dns-0000/uac_ua1.xml changed: update gen_suite.py"
            open(os.path.join(t, "uac_ua1.xml"), "w").write(text)
    for i in range(a.scripted):
        t = os.path.join(d, f"scripted-{i:04d}")
        write(os.path.join(t, "uas_ua0.xml"), UAS)
        write(os.path.join(t, "uac_ua1.xml"), uac)
        write(os.path.join(t, "before.sh"), 'echo "call from {{ ua1.host }} to {{ ua0.host }} (run {{ test.run_id }})"\n')
        write(os.path.join(t, "after.sh"), 'echo "call {{ test.run_id }} done"\n')
    for i in range(a.long):
        t = os.path.join(d, f"long-{i:04d}")
        write(os.path.join(t, "uas_ua0.xml"), UAS)
        write(os.path.join(t, "uac_ua1.xml"), UAC_PAUSE.replace("PAUSE", str(a.pause_ms)))
    for i in range(a.hang):
        t = os.path.join(d, f"hang-{i:04d}")
        write(os.path.join(t, "uas_ua0.xml"), UAS)
        write(os.path.join(t, "uac_ua1.xml"), UAC)
        write(os.path.join(t, "before.sh"), "echo 'hanging past --script-timeout'\nsleep 3600\n")
    for i in range(a.victim):
        t = os.path.join(d, f"victim-{i:04d}")
        write(os.path.join(t, "uas_ua0.xml"), UAS)
        write(os.path.join(t, "uac_ua1.xml"), UAC_PAUSE.replace("PAUSE", "3000"))
    for i in range(a.mixed):
        t = os.path.join(d, f"mixed-{i:04d}")
        write(os.path.join(t, "uas_ua0.xml"), UAS)
        pause = 200 * (1 + i * 7 % 10)
        write(os.path.join(t, "uac_ua1.xml"), UAC_PAUSE.replace("PAUSE", str(pause)))


if __name__ == "__main__":
    main()
