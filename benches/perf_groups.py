#!/usr/bin/env python3
"""Groups a cpu.sh profile the way BENCHMARKS.md section 9 shows it (issue 14.9).

    python3 benches/perf_groups.py OUT/after-perf.data [BUILD_NAME]

Reads `perf script` of the sipplauncher process of a `PERF=1 bash benches/cpu.sh` profile
(the process whose command is BUILD_NAME, `before` or `after`: the copies cpu.sh runs; by
default the file name's prefix) and prints, as a share of its samples:
- its threads (actix, blocking pool, pre-run, capture, log, events, render);
- the system call each sample is in (the kernel's `__x64_sys_*` frame; page faults and thread
  exits apart; "user" when none);
- within rtnetlink's `sendto`, which request (a rename is `rtnl_setlink`, a dump `netlink_dump`);
- the first kernel frames under `mkdirat` (ext4's `find_group_orlov` and its scan).
"""
import collections
import os
import re
import subprocess
import sys


def samples(data, comm):
    """Each sample of the process `comm`: (thread name, [frames, innermost first])."""
    out = subprocess.run(
        ["perf", "script", "-i", data, "-F", "comm,pid,tid,ip,sym"],
        check=True, capture_output=True, text=True,
    ).stdout
    pid = None
    thread, stack = None, []
    for line in out.splitlines() + [""]:
        if line and line[0].isspace():
            parts = line.split(None, 1)
            stack.append(parts[1].strip() if len(parts) > 1 else parts[0])
            continue
        if thread is not None and stack:
            yield thread, stack
        thread, stack = None, []
        if not line.strip():
            continue
        # "<comm> <pid>/<tid>" (comm may hold spaces: the pid/tid field is the anchor).
        m = re.match(r"^\s*(.*?)\s+(\d+)/(\d+)", line)
        if not m:
            continue
        name, p = m.group(1), m.group(2)
        if pid is None and name == comm:
            pid = p
        if p == pid:
            thread = name


def clean(frame):
    return re.sub(r"\+0x[0-9a-f]+$", "", frame.split(" (")[0])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data = sys.argv[1]
    comm = sys.argv[2] if len(sys.argv) > 2 else os.path.basename(data).split("-")[0]
    threads, calls, rtnl, mkdir = (collections.Counter() for _ in range(4))
    n = 0
    for thread, stack in samples(data, comm):
        n += 1
        threads["actix" if thread == comm else thread] += 1
        frames = [clean(f) for f in stack]
        call = next(
            (f for f in frames
             if f.startswith(("__x64_sys_", "__do_sys_", "ksys_", "asm_exc_page_fault", "do_exit"))),
            None,
        )
        name = "user" if call is None else re.sub(r"^(__x64_sys_|__do_sys_|ksys_)", "", call)
        calls[name] += 1
        if name == "sendto":
            req = next((f for f in frames if f.startswith(("rtnl_", "inet_rtm_", "netlink_dump"))), "other")
            rtnl[req] += 1
        if name == "mkdirat":
            i = frames.index(call)
            mkdir[" < ".join(reversed(frames[max(0, i - 6):i]))] += 1
    if n == 0:
        sys.exit(f"no sample of a process named {comm!r} in {data}")
    print(f"{n} samples of {comm} ({n / 2000:.2f} s at 2,000 Hz)")
    for title, c in (("threads", threads), ("system calls", calls)):
        print(f"\n{title} (% of the samples):")
        for k, v in c.most_common(24):
            print(f"  {100 * v / n:5.1f}  {k}")
    for title, c in (("sendto (rtnetlink), samples", rtnl), ("mkdirat, samples", mkdir)):
        print(f"\n{title}:")
        for k, v in c.most_common(6):
            print(f"  {v:5d}  {k}")


if __name__ == "__main__":
    main()
