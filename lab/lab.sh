#!/usr/bin/env bash
# A lab for sipplauncher: a DUT (Kamailio, a stateful SIP proxy) and a runner, each in a network
# namespace of its own, joined by one veth pair and connected to nothing else. Root only.
#
#   lab.sh up NAME              make NAME-dut and NAME-run, start Kamailio in NAME-dut
#   lab.sh down NAME            stop Kamailio, delete both namespaces (ok if already down)
#   lab.sh exec NAME -- CMD...  run CMD in NAME-run (where sipplauncher runs; LAB_RUNNER=K: in
#                               runner K's namespace)
#   lab.sh run NAME -- CMD...   up, CMD in NAME-run, down (also on failure or Ctrl+C);
#                               exits with CMD's status
#
# Addresses: LAB_NET (default 10.99.0) is a /24; the DUT is LAB_NET.1, the runner LAB_NET.2.
# The veth ends are made directly inside the namespaces (lab-dut in NAME-dut, lab-run in
# NAME-run), so nothing ever appears in, or is routed to, the host's own network.
# Both namespaces get /etc/netns/NS/resolv.conf pointing at the runner (where sipplauncher's
# DNS server answers), so Kamailio resolves Request-URI domains there.
#
# A scale-out lab (LAB_RUNNERS=N at `up`, N from 2 to 50): N runner namespaces, as N machines on
# the DUT's link. Runner 1 is NAME-run (LAB_NET.2), runner K is NAME-runK (LAB_NET.(K+1)); each
# has its veth lab-run plugged into a bridge lab-br in NAME-dut, which holds the DUT's LAB_NET.1.
# Every namespace resolves through runner 1 (the machine that runs shard 1: README, "Several
# machines"). `lab.sh down NAME` removes every runner.
# State (Kamailio's pid, log, runtime dir): $LAB_STATE_ROOT/NAME (default /run/sipplauncher-lab).
# LAB_CALL_LIMIT=N gives the DUT a capacity: at most N calls at once, the next INVITEs get
# "503 Too Many Calls" (as an SBC with a session limit); unset: no limit.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAB_NET="${LAB_NET:-10.99.0}"
LAB_STATE_ROOT="${LAB_STATE_ROOT:-/run/sipplauncher-lab}"
LAB_UP_TIMEOUT="${LAB_UP_TIMEOUT:-10}"
LAB_CALL_LIMIT="${LAB_CALL_LIMIT:-}"
KAMAILIO="${KAMAILIO:-kamailio}"
LAB_RUNNERS="${LAB_RUNNERS:-1}"
LAB_RUNNER="${LAB_RUNNER:-1}"

say() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
    exit 2
}

# mkdir -p that survives another lab's down removing the (empty) shared parent meanwhile.
make_dir() {
    local i
    for ((i = 0; i < 5; i++)); do
        mkdir -p -- "$1" 2>/dev/null && return 0
    done
    mkdir -p -- "$1"
}

show_log() {
    printf -- '----- %s -----\n' "$1" >&2
    cat -- "$1" >&2 || true
    printf -- '----- end of %s -----\n' "$1" >&2
}

check_name() {
    [[ "$1" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,30}$ ]] || die "bad lab name '$1' (letters, digits, _ . -; at most 31)"
}

check_runners() {
    [[ "$LAB_RUNNERS" =~ ^[1-9][0-9]?$ ]] && [ "$LAB_RUNNERS" -le 50 ] ||
        die "LAB_RUNNERS must be 1 to 50 (got '$LAB_RUNNERS')"
    [[ "$LAB_RUNNER" =~ ^[1-9][0-9]?$ ]] || die "LAB_RUNNER must be a runner's number (got '$LAB_RUNNER')"
}

check_net() {
    [[ "$LAB_NET" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "LAB_NET must be the first three octets of a /24, e.g. 10.99.0 (got '$LAB_NET')"
    [[ -z "$LAB_CALL_LIMIT" || "$LAB_CALL_LIMIT" =~ ^[1-9][0-9]{0,5}$ ]] || die "LAB_CALL_LIMIT must be a number of calls, at least 1 (got '$LAB_CALL_LIMIT')"
}

# Fields 3 (state) and 5 (process group) of /proc/PID/stat, as "STATE PGID" (no procps needed).
proc_state_pgid() {
    local stat rest st _ppid pgrp
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    read -r st _ppid pgrp _ <<<"$rest"
    printf '%s %s\n' "$st" "$pgrp"
}

# A live process (not a zombie: once its parent is gone, the lab's Kamailio is reaped by
# whoever adopts it, maybe late).
alive() {
    local sp
    sp=$(proc_state_pgid "$1") || return 1
    [ "${sp%% *}" != Z ]
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }

# The runner namespaces of lab $1 that exist: NAME-run, then NAME-run2, NAME-run3, ...
runner_namespaces() {
    ip netns list | awk '{print $1}' | grep -E -x -- "$1-run[0-9]*" | sort -V || true
}

# The namespace of runner $2 (1 = NAME-run) of lab $1.
runner_ns() {
    if [ "$2" = 1 ]; then printf '%s-run\n' "$1"; else printf '%s-run%s\n' "$1" "$2"; fi
}

# Kills (TERM, then KILL) every process inside network namespace $1: all of them are the lab's.
kill_ns_pids() {
    local ns=$1 pids i
    ns_exists "$ns" || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [ -n "${pids// /}" ] || return 0
    say "stop processes in $ns: $pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [ -n "${pids// /}" ] || return 0
        sleep 0.05
    done
    say "kill -KILL processes left in $ns: $pids"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [ -n "${pids// /}" ] || return 0
        sleep 0.1
    done
}

lab_down() {
    local name=$1 dut="$1-dut" run="$1-run" state="$LAB_STATE_ROOT/$1" pid i target
    if [ -f "$state/kamailio.pid" ]; then
        pid=$(cat "$state/kamailio.pid")
        if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"; then
            # Kamailio was started with setsid: its process group (id = its pid) is Kamailio
            # and its children. TERM to the whole group: it is gone in milliseconds (TERM to
            # the main process alone takes a second).
            target=$pid
            [ "$(proc_state_pgid "$pid" | cut -d' ' -f2)" = "$pid" ] && target=-$pid
            say "stop Kamailio (pid $pid) in $dut"
            kill -TERM -- "$target" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                alive "$pid" || break
                sleep 0.02
            done
            if alive "$pid"; then
                say "kill -KILL Kamailio (pid $pid)"
                kill -KILL -- "$target" 2>/dev/null || true
            fi
        fi
    fi
    # Kamailio's children, or anything else still running inside (sipp, a DNS server...).
    local runners
    runners=$(runner_namespaces "$name")
    kill_ns_pids "$dut"
    for ns in $runners; do
        kill_ns_pids "$ns"
    done
    for ns in $runners "$dut"; do
        if ns_exists "$ns"; then
            say "delete namespace $ns"
            ip netns delete "$ns"
        fi
        if [ -d "/etc/netns/$ns" ]; then
            say "remove /etc/netns/$ns"
            rm -rf -- "/etc/netns/$ns"
        fi
    done
    rmdir /etc/netns 2>/dev/null || true
    if [ -d "$state" ]; then
        say "remove $state"
        rm -rf -- "$state"
    fi
    rmdir "$LAB_STATE_ROOT" 2>/dev/null || true
    say "$name is down"
}

# Both ends of the veth have a carrier (link state UP comes a moment after "link set up").
veth_up() {
    ip -n "$1" -o link show lab-dut 2>/dev/null | grep -q 'state UP' &&
        ip -n "$2" -o link show lab-run 2>/dev/null | grep -q 'state UP'
}

kamailio_listens() {
    ip netns exec "$1" ss -Hln -u "src ${LAB_NET}.1:5060" 2>/dev/null | grep -q . &&
        ip netns exec "$1" ss -Hln -t "src ${LAB_NET}.1:5060" 2>/dev/null | grep -q .
}

# Every runner's veth has a carrier (the scale-out lab).
runners_up() {
    local name=$1 k
    for ((k = 1; k <= LAB_RUNNERS; k++)); do
        ip -n "$(runner_ns "$name" "$k")" -o link show lab-run 2>/dev/null | grep -q 'state UP' ||
            return 1
    done
}

lab_up() {
    local name=$1 dut="$1-dut" run="$1-run" state="$LAB_STATE_ROOT/$1" pid deadline ns
    local dut_ip="${LAB_NET}.1" run_ip="${LAB_NET}.2"
    command -v "$KAMAILIO" >/dev/null || die "$KAMAILIO not found (apt-get install -y kamailio)"
    if ns_exists "$dut" || ns_exists "$run"; then
        die "lab $name exists already (lab.sh down $name)"
    fi
    if [ "$LAB_RUNNERS" -gt 1 ]; then
        lab_up_runners "$name"
        return
    fi
    # From here on, a failure (or a signal) takes down what was made: see on_exit.
    DOWN_ON_EXIT=$name
    make_dir "$state"
    chmod 755 "$LAB_STATE_ROOT" "$state"
    for ns in "$dut" "$run"; do
        say "create namespace $ns"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # The DUT resolves Request-URI domains with the runner's DNS server (sipplauncher's).
        make_dir "/etc/netns/$ns"
        printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$run_ip" >"/etc/netns/$ns/resolv.conf"
    done
    say "veth lab-dut ($dut, $dut_ip/24) <-> lab-run ($run, $run_ip/24)"
    ip link add lab-dut netns "$dut" type veth peer name lab-run netns "$run"
    ip -n "$dut" addr add "$dut_ip/24" dev lab-dut
    ip -n "$run" addr add "$run_ip/24" dev lab-run
    # No IPv6 on the lab's links: no DAD delays, no router solicitations.
    for ns in "$dut" "$run"; do
        # shellcheck disable=SC2016
        ip netns exec "$ns" sh -c 'for f in all default; do
            echo 1 >"/proc/sys/net/ipv6/conf/$f/disable_ipv6"; done' 2>/dev/null || true
    done
    ip -n "$dut" link set lab-dut up
    ip -n "$run" link set lab-run up

    start_kamailio "$name" veth_up "$dut" "$run"
    say "$name is up: DUT $dut_ip ($dut), runner $run_ip ($run); Kamailio pid $(cat "$state/kamailio.pid")"
}

# Starts Kamailio in NAME-dut and waits until it listens and `$2 $3...` (the links are up) holds.
start_kamailio() {
    local name=$1 dut="$1-dut" state="$LAB_STATE_ROOT/$1" dut_ip="${LAB_NET}.1" pid deadline
    shift
    local limit=()
    if [ -n "$LAB_CALL_LIMIT" ]; then
        limit=(-A "CALL_LIMIT=$LAB_CALL_LIMIT")
    fi
    say "start Kamailio in $dut on udp+tcp $dut_ip:5060 (log $state/kamailio.log)${LAB_CALL_LIMIT:+, at most $LAB_CALL_LIMIT calls at once}"
    # setsid: its own session, so that a Ctrl+C meant for the caller does not reach it
    # (lab.sh down stops it). -DD: the creator stays in the foreground (its pid is known).
    setsid ip netns exec "$dut" "$KAMAILIO" -f "$LAB_DIR/kamailio.cfg" -A "DUT_ADDR=$dut_ip" \
        "${limit[@]}" -DD -E -m 32 -M 4 -Y "$state" \
        </dev/null >"$state/kamailio.log" 2>&1 &
    pid=$!
    echo "$pid" >"$state/kamailio.pid"
    deadline=$((SECONDS + LAB_UP_TIMEOUT))
    until "$@" && kamailio_listens "$dut"; do
        if ! alive "$pid"; then
            show_log "$state/kamailio.log"
            die "Kamailio exited before listening on $dut_ip:5060 (its log is above)"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$state/kamailio.log"
            "$@" || die "the lab's links are not up after ${LAB_UP_TIMEOUT}s"
            die "Kamailio does not listen on $dut_ip:5060 after ${LAB_UP_TIMEOUT}s (its log is above)"
        fi
        sleep 0.05
    done
}

# The scale-out lab: a bridge lab-br in NAME-dut (the DUT's address on it), a runner namespace
# per runner with its veth lab-run plugged into the bridge (as lab-rK on the DUT's side).
lab_up_runners() {
    local name=$1 dut="$1-dut" state="$LAB_STATE_ROOT/$1" k ns
    local dut_ip="${LAB_NET}.1" run_ip="${LAB_NET}.2"
    DOWN_ON_EXIT=$name
    make_dir "$state"
    chmod 755 "$LAB_STATE_ROOT" "$state"
    for ((k = 0; k <= LAB_RUNNERS; k++)); do
        if [ "$k" = 0 ]; then ns=$dut; else ns=$(runner_ns "$name" "$k"); fi
        say "create namespace $ns"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        make_dir "/etc/netns/$ns"
        printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$run_ip" >"/etc/netns/$ns/resolv.conf"
        # shellcheck disable=SC2016
        ip netns exec "$ns" sh -c 'for f in all default; do
            echo 1 >"/proc/sys/net/ipv6/conf/$f/disable_ipv6"; done' 2>/dev/null || true
    done
    say "bridge lab-br ($dut, $dut_ip/24)"
    ip -n "$dut" link add lab-br type bridge
    # No STP and no forwarding delay: a port forwards as soon as it is up.
    ip -n "$dut" link set lab-br type bridge stp_state 0 forward_delay 0
    ip -n "$dut" addr add "$dut_ip/24" dev lab-br
    ip -n "$dut" link set lab-br up
    for ((k = 1; k <= LAB_RUNNERS; k++)); do
        ns=$(runner_ns "$name" "$k")
        say "veth lab-r$k ($dut, on lab-br) <-> lab-run ($ns, ${LAB_NET}.$((k + 1))/24)"
        ip link add "lab-r$k" netns "$dut" type veth peer name lab-run netns "$ns"
        ip -n "$dut" link set "lab-r$k" master lab-br
        ip -n "$ns" addr add "${LAB_NET}.$((k + 1))/24" dev lab-run
        ip -n "$dut" link set "lab-r$k" up
        ip -n "$ns" link set lab-run up
    done
    start_kamailio "$name" runners_up "$name"
    say "$name is up: DUT $dut_ip ($dut), $LAB_RUNNERS runners from $run_ip; Kamailio pid $(cat "$state/kamailio.pid")"
}

lab_exec() {
    local name=$1 ns
    shift
    ns=$(runner_ns "$name" "$LAB_RUNNER")
    ns_exists "$ns" || die "lab $name is not up (no namespace $ns)"
    exec ip netns exec "$ns" "$@"
}

# The name of a lab to take down when this script exits, whatever the reason.
DOWN_ON_EXIT=
on_exit() {
    local status=$?
    trap '' INT TERM HUP
    if [ -n "$DOWN_ON_EXIT" ]; then
        [ "$status" = 0 ] || say "exit status $status: taking $DOWN_ON_EXIT down"
        lab_down "$DOWN_ON_EXIT" || status=1
    fi
    exit "$status"
}

# Runs CMD in NAME-run and returns its exit status. CMD stays in our process group, so that a
# Ctrl+C on the terminal reaches it directly (once); a TERM sent to this script alone is passed
# on to CMD. Either way the lab is taken down when CMD has ended.
CHILD=
INTERRUPTED=0
forward_term() {
    INTERRUPTED=1
    [ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null || true
}
lab_run_cmd() {
    local name=$1 status
    shift
    say "run in $name-run: $*"
    (
        trap - INT QUIT TERM HUP
        exec ip netns exec "$name-run" "$@"
    ) &
    CHILD=$!
    while :; do
        INTERRUPTED=0
        status=0
        wait "$CHILD" || status=$?
        [ "$INTERRUPTED" = 1 ] || break
    done
    CHILD=
    say "command exited with status $status"
    return "$status"
}

main() {
    [ $# -ge 2 ] || usage
    local cmd=$1 name=$2 status
    shift 2
    check_name "$name"
    check_net
    check_runners
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    trap on_exit EXIT
    case "$cmd" in
    up)
        [ $# -eq 0 ] || usage
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
        lab_up "$name"
        DOWN_ON_EXIT=
        ;;
    down)
        [ $# -eq 0 ] || usage
        trap '' INT TERM HUP
        lab_down "$name"
        ;;
    exec | run)
        [ "${1:-}" = "--" ] && shift
        [ $# -ge 1 ] || usage
        if [ "$cmd" = exec ]; then
            lab_exec "$name" "$@"
        fi
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
        lab_up "$name"
        # While CMD runs: INT and HUP reach it from the terminal, TERM is passed on; once it
        # has ended, on_exit takes the lab down.
        trap 'INTERRUPTED=1' INT HUP
        trap forward_term TERM
        status=0
        lab_run_cmd "$name" "$@" || status=$?
        trap 'exit 130' INT
        trap 'exit 143' TERM
        exit "$status"
        ;;
    *) usage ;;
    esac
}

main "$@"
