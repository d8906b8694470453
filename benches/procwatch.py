#!/usr/bin/env python3
"""Runs a command (sipplauncher) and watches it from outside; used by the bench scripts.

    procwatch.py --out DIR [--interval S] [--run-root DIR] [--dns-check] -- CMD...

Run it inside the lab's runner namespace (lab/lab.sh run NAME -- python3 procwatch.py ...): the
`ip` commands and the DNS look-ups below then see only that namespace.

Writes into DIR:
  stdout, stderr   the command's output (stdout read line by line: state lines are counted)
  samples.csv      one row every --interval seconds (and a last row after the command ended):
                   t_s, runs_done (CLEANING + NOT READY lines), passed/failed/not_ready/dirty
                   lines, rss_kib, hwm_kib, fds, threads, children, zombies (among children),
                   stuck_zombies (zombie children already zombies at the sample before: not
                   reaped for a whole interval), descendants, sipp_in_ns (sipp processes in this network namespace, whoever
                   their parent), procs_in_ns (every process of the namespace but this watcher and
                   the `ip`/`dig` it runs), run_links (sipp-<run_id>), spare_links (sipp-_xxxxxx), reserve_links (sipp-+xxxxxx),
                   sipp_addrs (IPv4 addresses on sipp-* links), run_folders (<root>/<test>/<id>),
                   dns_pos (look-ups of a running dns test that answered), dns_neg_ok (look-ups of
                   a finished dns test that were REFUSED or NXDOMAIN), dns_leaked (look-ups of a finished
                   dns test that still answered)
  summary.json     exit status, wall time, peak RSS (VmHWM), the command's own CPU time (user,
                   system; read from its zombie before it is reaped, so nothing is missed) and
                   that of its reaped children, the last sample, the DNS look-ups that leaked.
"""
import argparse
import csv
import json
import os
import re
import subprocess
import sys
import threading
import time

STATE_LINE = re.compile(r"^\s*(PREPARING|STARTING|SUCCESS|FAIL|CLEANING|NOT READY|DIRTY)\s+(\S+) \((\d+)-([a-z]+)\)")
CLK = os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def stat_fields(pid):
    """/proc/PID/stat fields after the command name: [state, ppid, pgrp, ...]."""
    s = read(f"/proc/{pid}/stat")
    if s is None:
        return None
    return s[s.rindex(")") + 2:].split()


def status_kib(pid, key):
    s = read(f"/proc/{pid}/status")
    if s is None:
        return None
    for line in s.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def my_netns():
    return os.readlink("/proc/self/ns/net")


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.states = {k: 0 for k in ("CLEANING", "NOT READY", "SUCCESS", "FAIL", "DIRTY", "STARTING")}
        self.dns_started = []   # run ids of dns tests seen STARTING, to look up while they run
        self.dns_finished = []  # (time, run_id) of dns tests seen CLEANING
        self.dns_pos = 0
        self.dns_neg_ok = 0
        self.dns_leaked = []


def pump(stream, out_path, c):
    with open(out_path, "w") as out:
        for raw in stream:
            line = raw.decode(errors="replace")
            out.write(line)
            out.flush()
            m = STATE_LINE.match(line)
            if not m:
                continue
            state, test, _idx, run_id = m.groups()
            with c.lock:
                c.states[state] = c.states.get(state, 0) + 1
                if test.startswith("dns"):
                    if state == "STARTING":
                        c.dns_started.append(run_id)
                    elif state == "CLEANING":
                        c.dns_finished.append((time.monotonic(), run_id))


def dig_status(name, rtype, server):
    try:
        r = subprocess.run(["dig", "+time=1", "+tries=1", "+noall", "+comments", f"@{server}", name, rtype],
                           capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "ERROR"
    m = re.search(r"status: (\w+)", r.stdout)
    return m.group(1) if m else "NO-ANSWER"


def dns_checker(c, stop, server, delay, max_neg):
    """Looks up the names of dns tests: while they run (must answer), and `delay` s after their
    CLEANING line (must be REFUSED, or NXDOMAIN while other tests still serve example.com: the
    records were removed; NOERROR, with or without records, is a leak)."""
    neg_done = 0
    while not stop.is_set():
        with c.lock:
            started = c.dns_started
            c.dns_started = []
            now = time.monotonic()
            due = [r for (t, r) in c.dns_finished if now - t >= delay]
            c.dns_finished = [(t, r) for (t, r) in c.dns_finished if now - t < delay]
        for run_id in started[-2:]:  # at most two a round: the look-up must not lag
            if dig_status(f"ua0-{run_id}.example.com", "A", server) == "NOERROR":
                with c.lock:
                    c.dns_pos += 1
        for run_id in due:
            if neg_done >= max_neg:
                break
            neg_done += 1
            for name, rtype in ((f"ua0-{run_id}.example.com", "A"), (f"_sip._udp.svc-{run_id}.example.com", "SRV")):
                st = dig_status(name, rtype, server)
                with c.lock:
                    if st in ("REFUSED", "NXDOMAIN"):
                        c.dns_neg_ok += 1
                    elif st not in ("ERROR", "NO-ANSWER"):  # no server (not bound yet / gone)
                        c.dns_leaked.append(f"{name} {rtype}: {st}")
        stop.wait(0.2)


def all_procs():
    """{pid: (comm, state, ppid)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        f = stat_fields(d)
        comm = read(f"/proc/{d}/comm")
        if f is None or comm is None:
            continue
        out[int(d)] = (comm.strip(), f[0], int(f[1]))
    return out


def in_ns(pid, ns):
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == ns
    except OSError:
        return False


def links_and_addrs():
    run_links = spare_links = reserve_links = addrs = 0
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith("sipp-_"):
                spare_links += 1
            elif name.startswith("sipp-+"):
                # The ARP reserve's link (one per process, made with the NetActor): its
                # addresses answer ARP for the addresses probed ahead. Not a test's link.
                reserve_links += 1
            elif name.startswith("sipp-"):
                run_links += 1
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
        addrs = sum(1 for line in out.splitlines() if line.split()[1].startswith("sipp-"))
    except (OSError, subprocess.TimeoutExpired, IndexError):
        pass
    return run_links, spare_links, reserve_links, addrs


def run_folders(root):
    if not root or not os.path.isdir(root):
        return 0
    n = 0
    try:
        for t in os.scandir(root):
            if t.is_dir(follow_symlinks=False):
                try:
                    n += sum(1 for r in os.scandir(t.path) if r.is_dir(follow_symlinks=False))
                except OSError:
                    pass
    except OSError:
        pass
    return n


FIELDS = ["t_s", "runs_done", "passed", "failed", "not_ready", "dirty", "rss_kib", "hwm_kib", "fds", "threads",
          "children", "zombies", "stuck_zombies", "descendants", "sipp_in_ns", "procs_in_ns", "run_links", "spare_links", "reserve_links",
          "sipp_addrs", "run_folders", "dns_pos", "dns_neg_ok", "dns_leaked"]


PREV_ZOMBIES = set()


def sample(pid, t0, c, ns, root, alive, peak):
    global PREV_ZOMBIES
    row = {"t_s": round(time.monotonic() - t0, 2)}
    with c.lock:
        row.update(runs_done=c.states["CLEANING"] + c.states["NOT READY"], passed=c.states["SUCCESS"],
                   failed=c.states["FAIL"], not_ready=c.states["NOT READY"], dirty=c.states["DIRTY"],
                   dns_pos=c.dns_pos, dns_neg_ok=c.dns_neg_ok, dns_leaked=len(c.dns_leaked))
    procs = all_procs()
    me = os.getpid()
    if alive:
        row["rss_kib"] = status_kib(pid, "VmRSS")
        hwm = status_kib(pid, "VmHWM")
        if hwm:
            peak[0] = max(peak[0], hwm)
        row["hwm_kib"] = hwm
        try:
            row["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            row["fds"] = None
        row["threads"] = status_kib(pid, "Threads")
    kids = [p for p, (_, _, pp) in procs.items() if pp == pid]
    row["children"] = len(kids)
    zombies = {p for p in kids if procs[p][1] == "Z"}
    row["zombies"] = len(zombies)
    row["stuck_zombies"] = len(zombies & PREV_ZOMBIES)
    PREV_ZOMBIES = zombies
    desc, frontier = set(), [pid]
    while frontier:
        nxt = [p for p, (_, _, pp) in procs.items() if pp in frontier and p not in desc]
        desc.update(nxt)
        frontier = nxt
    row["descendants"] = len(desc)
    ns_pids = [p for p in procs if in_ns(p, ns)]
    row["sipp_in_ns"] = sum(1 for p in ns_pids if procs[p][0] == "sipp")
    # Not counted: this watcher, its threads' children (ip, dig) and the lab's wrappers above it.
    mine = {me} | {p for p, (_, _, pp) in procs.items() if pp == me and p != pid}
    ancestors, p = set(), me
    while p > 1 and p in procs:
        p = procs[p][2]
        ancestors.add(p)
    row["procs_in_ns"] = sum(1 for p in ns_pids if p not in mine and p not in ancestors)
    row["run_links"], row["spare_links"], row["reserve_links"], row["sipp_addrs"] = links_and_addrs()
    row["run_folders"] = run_folders(root)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--run-root")
    ap.add_argument("--dns-check", action="store_true")
    ap.add_argument("--dns-server", default="127.0.0.1")
    ap.add_argument("--dns-delay", type=float, default=2.0)
    ap.add_argument("--dns-max", type=int, default=100000)
    ap.add_argument("--pidfile", help="write the command's pid here")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    os.makedirs(a.out, exist_ok=True)
    ns = my_netns()
    c = Counters()
    t0 = time.monotonic()
    err = open(os.path.join(a.out, "stderr"), "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(f"{p.pid}\n")
    reader = threading.Thread(target=pump, args=(p.stdout, os.path.join(a.out, "stdout"), c), daemon=True)
    reader.start()
    stop = threading.Event()
    if a.dns_check:
        threading.Thread(target=dns_checker, args=(c, stop, a.dns_server, a.dns_delay, a.dns_max), daemon=True).start()
    peak = [0]
    f = open(os.path.join(a.out, "samples.csv"), "w", newline="")
    w = csv.DictWriter(f, fieldnames=FIELDS)
    w.writeheader()
    next_t = time.monotonic()
    exited = None
    while exited is None:
        # Wait for the exit without reaping it (WNOWAIT): its zombie still tells its CPU time.
        try:
            r = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            r = None
        if r is not None:
            exited = time.monotonic()
            break
        if time.monotonic() >= next_t:
            w.writerow(sample(p.pid, t0, c, ns, a.run_root, True, peak))
            f.flush()
            next_t += a.interval
        time.sleep(0.02)
    st = stat_fields(p.pid)
    utime, stime, cutime, cstime = (int(x) / CLK for x in st[11:15])
    status = p.wait()
    reader.join(timeout=10)
    stop.set()
    # Once the command is gone: what it left (after a moment for the kernel to settle).
    time.sleep(0.3)
    last = sample(p.pid, t0, c, ns, a.run_root, False, peak)
    w.writerow(last)
    f.close()
    summary = {
        "cmd": cmd, "status": status, "wall_s": round(exited - t0, 3), "peak_rss_kib": peak[0],
        "cpu_user_s": utime, "cpu_sys_s": stime, "children_cpu_user_s": cutime, "children_cpu_sys_s": cstime,
        "states": c.states, "dns_pos": c.dns_pos, "dns_neg_ok": c.dns_neg_ok, "dns_leaked": c.dns_leaked,
        "after_exit": last,
    }
    with open(os.path.join(a.out, "summary.json"), "w") as out:
        json.dump(summary, out, indent=1)
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
