#!/usr/bin/env bash
# The first command for a new user, on a fresh Debian machine, as root, from a clone of the
# repository: installs what is missing, builds sipplauncher, then runs the example suite
# (tmp-testsuite/) against a real DUT (Kamailio) in a throw-away lab of two network namespaces
# (see lab.sh). Extra arguments go to sipplauncher. Exits with sipplauncher's status.
#
#   sudo lab/run-example.sh [SIPPLAUNCHER OPTIONS...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" = 0 ] || { echo "run-example: run it as root (it makes network namespaces)" >&2; exit 1; }

missing=()
command -v sipp >/dev/null || missing+=(sip-tester)
command -v kamailio >/dev/null || missing+=(kamailio)
command -v ip >/dev/null || missing+=(iproute2)
command -v ss >/dev/null || missing+=(iproute2)
command -v cargo >/dev/null || missing+=(cargo)
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "run-example: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Debian's kamailio package starts (and enables) its own service, listening on every
    # interface of this machine with the default config. The lab runs its own instance inside
    # a namespace, so keep the service from starting: a policy-rc.d during the install, then
    # disable the unit.
    new_kamailio=no
    [[ " ${missing[*]} " == *" kamailio "* ]] && new_kamailio=yes
    own_policy=no
    if [ "$new_kamailio" = yes ] && [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# run-example.sh: no service starts during its install\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=yes
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y --no-install-recommends "${missing[@]}"
    if [ "$own_policy" = yes ]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    if [ "$new_kamailio" = yes ] && [ -d /run/systemd/system ]; then
        echo "run-example: disabling Debian's kamailio.service (the lab runs its own Kamailio)" >&2
        systemctl disable --now kamailio.service >/dev/null 2>&1 || true
    fi
fi

echo "run-example: cargo build --release" >&2
cargo build --release

status=0
lab/lab.sh run example -- ./target/release/sipplauncher --dut "${LAB_NET:-10.99.0}.1" --testsuite tmp-testsuite "$@" || status=$?
exit "$status"
