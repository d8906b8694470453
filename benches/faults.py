#!/usr/bin/env python3
"""The fault injector of benches/faults.sh; runs inside the lab's runner namespace.

    faults.py OUT LAB PHASE

PHASE is one of:
  soak     a --loop run (--group 5, --script-timeout 2) of a suite with calls, OPTIONS pings, a dns
           test, 3-second calls (victim-*) and a test whose before.sh hangs (hang-*); while it
           runs: SIGKILL of a victim's UAC SIPp mid-call, then of a victim's UAS; the DUT stopped
           for 5 s and started again; then SIGINT.
  rofolder the same suite, --loop: <run root>/rofolder-0000 made immutable (chattr +i: root is
           not stopped by mode bits) for 10 s, then SIGINT 8 s later if the run still goes on.
  roroot   the same, the whole run root immutable for 3 s.
  dns      UDP port 53 taken (a socket bound on 0.0.0.0:53 in the runner namespace) before the
           run starts, released 4 s into the run: a suite of dns and call tests, --group 2, 150 runs.
  kill     SIGKILL of sipplauncher while 5 long calls (8 s) run, then at once a new run with the
           same run root: its start must remove the killed run's links and SIPp processes.
Everything the run printed and reported, the watcher's samples and the injector's own log
(events.log, with monotonic times) go to OUT/PHASE/.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT, LAB, PHASE = sys.argv[1], sys.argv[2], sys.argv[3]
D = os.path.join(OUT, PHASE)
os.makedirs(D, exist_ok=True)
T0 = time.monotonic()
LOG = open(os.path.join(D, "events.log"), "w")
STATE_ROOT = os.environ.get("LAB_STATE_ROOT", "/run/sipplauncher-lab")
LAB_DIR = os.path.join(os.path.dirname(HERE), "lab")
BIN = os.path.join(OUT, "sipplauncher")


def ev(msg):
    line = f"{time.monotonic() - T0:7.2f} {msg}"
    LOG.write(line + "\n")
    LOG.flush()
    print(f"faults[{PHASE}]: {line}", file=sys.stderr, flush=True)


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def my_ns():
    return os.readlink("/proc/self/ns/net")


def ns_procs():
    """[(pid, comm, cmdline, cwd)] of the processes in this network namespace."""
    ns, out = my_ns(), []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{p}/ns/net") != ns:
                continue
            comm = open(f"/proc/{p}/comm").read().strip()
            cmd = open(f"/proc/{p}/cmdline").read().replace("\0", " ").strip()
            cwd = os.readlink(f"/proc/{p}/cwd")
        except OSError:
            continue
        out.append((int(p), comm, cmd, cwd))
    return out


def sipp_links():
    return [l.split(":")[1].strip() for l in sh("ip", "-o", "link", "show").splitlines()
            if l.split(":")[1].strip().startswith("sipp-")]


def sipp_addrs():
    return [l.split()[3] for l in sh("ip", "-o", "-4", "addr", "show").splitlines() if l.split()[1].startswith("sipp-")]


def leftovers(run_root, extra_comm=("sipp", "sleep")):
    procs = [(p, c) for (p, c, _, _) in ns_procs() if c in extra_comm]
    folders = []
    if os.path.isdir(run_root):
        for t in os.scandir(run_root):
            if t.is_dir(follow_symlinks=False):
                folders += [f"{t.name}/{r.name}" for r in os.scandir(t.path)]
    return {"links": sipp_links(), "addrs": sipp_addrs(), "procs": procs, "folders": folders}


def start(args, name="run"):
    d = os.path.join(D, name)
    os.makedirs(d, exist_ok=True)
    cmd = ["python3", os.path.join(HERE, "procwatch.py"), "--out", d, "--interval", "0.5",
           "--run-root", RUN_ROOT, "--pidfile", os.path.join(d, "pid")]
    if PHASE != "kill":
        cmd.append("--dns-check")
    cmd += ["--", BIN, "--dut", "10.99.0.1", "--testsuite", os.path.join(OUT, "suite-" + {"rofolder": "soak", "roroot": "soak"}.get(PHASE, PHASE)),
            "--group-pause", "0", "--sipp-call-rate", "1000", "--run-root", RUN_ROOT,
            "--log-file", os.path.join(d, "sipplauncher.log"), "--json", os.path.join(d, "report.json")] + args
    ev(f"start {name}: {' '.join(cmd[cmd.index('--') + 1:])}")
    p = subprocess.Popen(cmd)
    while not os.path.exists(os.path.join(d, "pid")):
        time.sleep(0.01)
    time.sleep(0.05)
    pid = int(open(os.path.join(d, "pid")).read())
    return p, pid, d


def lines(d):
    try:
        return open(os.path.join(d, "stdout")).read().splitlines()
    except OSError:
        return []


def wait_line(d, regex, timeout, p=None):
    rx = re.compile(regex)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for l in lines(d):
            m = rx.search(l)
            if m:
                return m
        if p is not None and p.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def kill_sipp_of(test_prefix, role, skip=()):
    """SIGKILL the `role` SIPp (uac/uas) of a running `test_prefix` test; returns (pid, run folder)."""
    for (pid, comm, cmd, cwd) in ns_procs():
        if comm == "sipp" and f"/{test_prefix}" in cwd and f"{role}_" in cmd and cwd not in skip:
            os.kill(pid, signal.SIGKILL)
            return pid, cwd
    return None, None


# The DUT, as lab/lab.sh starts and stops it.
def dut_pid():
    return int(open(os.path.join(STATE_ROOT, LAB, "kamailio.pid")).read())


def dut_stop():
    pid = dut_pid()
    try:
        # Its own process group (setsid): TERM to the group, as lab.sh does.
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z":
            break
        time.sleep(0.02)
    left = sh("ip", "netns", "pids", f"{LAB}-dut").split()
    if left:
        subprocess.run(["kill", "-KILL"] + left)
    ev(f"DUT stopped (Kamailio pid {pid}; processes left in {LAB}-dut killed: {left})")


def dut_start():
    state = os.path.join(STATE_ROOT, LAB)
    log = open(os.path.join(state, "kamailio-restart.log"), "a")
    p = subprocess.Popen(["setsid", "ip", "netns", "exec", f"{LAB}-dut", "kamailio", "-f", os.path.join(LAB_DIR, "kamailio.cfg"),
                          "-A", "DUT_ADDR=10.99.0.1", "-DD", "-E", "-m", "32", "-M", "4", "-Y", state],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    open(os.path.join(state, "kamailio.pid"), "w").write(f"{p.pid}\n")
    for _ in range(200):
        if "10.99.0.1:5060" in sh("ip", "netns", "exec", f"{LAB}-dut", "ss", "-Hlnu"):
            break
        time.sleep(0.05)
    ev(f"DUT started again (Kamailio pid {p.pid}, listening)")


def chattr(flag, path):
    r = subprocess.run(["chattr", flag, path], capture_output=True, text=True)
    ev(f"chattr {flag} {path}: {'ok' if r.returncode == 0 else r.stderr.strip()}")


def finish(p, name, d):
    status = p.wait()
    ev(f"{name} exited with status {status}")
    time.sleep(0.3)
    left = leftovers(RUN_ROOT)
    ev(f"left after {name}: {json.dumps(left)}")
    json.dump({"status": status, "left": left}, open(os.path.join(d, "after.json"), "w"))
    return status


RUN_ROOT = os.path.join(D, "runs")
os.makedirs(RUN_ROOT, exist_ok=True)

if PHASE == "soak":
    p, pid, d = start(["--group", "5", "--loop", "--script-timeout", "2"])
    try:
        # 1. SIGKILL a victim's UAC mid-call (after its ACK: 3 s pause before the BYE), then a UAS.
        for role in ("uac", "uas"):
            m = wait_line(d, r"STARTING\s+(victim-\d+) \((\d+)-([a-z]+)\)", 60, p)
            end = time.monotonic() + 10
            killed = (None, None)
            while killed[0] is None and time.monotonic() < end:
                time.sleep(0.5)
                killed = kill_sipp_of("victim-", role)
            ev(f"SIGKILL {role} SIPp of a victim test: pid {killed[0]} in {killed[1]}")
            time.sleep(6)
        # 2. The DUT stopped for 5 s, then started again.
        dut_stop()
        time.sleep(5)
        dut_start()
        time.sleep(8)
    finally:
        ev("SIGINT to sipplauncher")
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            ev("sipplauncher had exited already")
    finish(p, "run", d)

elif PHASE in ("rofolder", "roroot"):
    # A run folder made unwritable: the test's folder under the run root (rofolder), or the whole
    # run root (roroot), immutable (chattr +i) for a while. Each fault in a run of its own: the
    # first one seen stopped the run.
    p, pid, d = start(["--group", "5", "--loop", "--script-timeout", "2"])
    path = os.path.join(RUN_ROOT, "rofolder-0000") if PHASE == "rofolder" else RUN_ROOT
    try:
        wait_line(d, r"CLEANING", 30, p)
        time.sleep(2)
        os.makedirs(path, exist_ok=True)
        chattr("+i", path)
        time.sleep(10 if PHASE == "rofolder" else 3)
        chattr("-i", path)
        time.sleep(8)
    finally:
        subprocess.run(["chattr", "-i", path])
        ev("SIGINT to sipplauncher")
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            ev("sipplauncher had exited already")
    finish(p, "run", d)

elif PHASE == "dns":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 53))
    ev("UDP port 53 taken on 0.0.0.0 by the injector")
    p, pid, d = start(["--group", "2", "--total", "150"])
    time.sleep(4)
    s.close()
    ev("UDP port 53 released")
    finish(p, "run", d)

elif PHASE == "kill":
    p, pid, d = start(["--group", "5", "--total", "5"], "killed")
    n = 0
    end = time.monotonic() + 30
    while n < 5 and time.monotonic() < end:
        n = sum(1 for l in lines(d) if "STARTING" in l)
        time.sleep(0.05)
    time.sleep(1)
    before = leftovers(RUN_ROOT)
    ev(f"before SIGKILL: {len(before['links'])} links, {len(before['addrs'])} addresses, "
       f"{len(before['procs'])} sipp processes, {len(before['folders'])} run folders")
    os.kill(pid, signal.SIGKILL)
    ev(f"SIGKILL sipplauncher (pid {pid})")
    p.wait()
    time.sleep(0.3)
    left = leftovers(RUN_ROOT)
    ev(f"left by the killed run: {json.dumps(left)}")
    json.dump({"before_kill": before, "left": left}, open(os.path.join(d, "after.json"), "w"))
    # A new run at once (the killed run's SIPp are still in their 8 s calls), same run root.
    p2, pid2, d2 = start(["--group", "1", "--total", "3", "--pattern-only", "options"], "next")
    m = wait_line(d2, r"PREPARING", 30, p2)
    at_start = leftovers(RUN_ROOT)
    ev(f"when the new run printed its first PREPARING: {json.dumps(at_start)}")
    json.dump(at_start, open(os.path.join(d2, "at_start.json"), "w"))
    finish(p2, "next", d2)
