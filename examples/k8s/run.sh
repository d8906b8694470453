#!/usr/bin/env bash
# Runs a sipplauncher suite on a Kubernetes cluster in shards, then merges the reports:
#
#   bash examples/k8s/run.sh SUITE_DIR [OUT_DIR]
#
# The shared volume (reports-pvc.yaml) gets the suite, the Indexed Job (shards-job.yaml) runs
# the shards at once, the merge Job (merge-job.yaml) joins their reports; suite.json, suite.xml
# and suite.html come back to OUT_DIR (default: .). Exit status 0 when the merge Job completed
# (every test of every shard passed), else 1 (the merge's log, printed, says why).
set -euo pipefail
suite=${1:?usage: run.sh SUITE_DIR [OUT_DIR]}
out=${2:-.}
here=$(cd "$(dirname "$0")" && pwd)

# Waits until Job $1 is Complete or Failed; prints which.
job_end() {
    local c
    while :; do
        c=$(kubectl get job "$1" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {end}')
        case "$c" in
        *Complete=True*) echo Complete; return ;;
        *Failed=True*) echo Failed; return ;;
        esac
        sleep 5
    done
}

kubectl apply -f "$here/reports-pvc.yaml" -f "$here/dns-service.yaml" -f "$here/data-pod.yaml"
kubectl wait --for=condition=Ready --timeout=300s pod/sipplauncher-data
kubectl exec sipplauncher-data -- sh -c 'rm -rf /data/suite /data/reports && mkdir -p /data/reports'
kubectl cp "$suite" sipplauncher-data:/data/suite

kubectl delete job sipplauncher-shards sipplauncher-merge --ignore-not-found
kubectl apply -f "$here/shards-job.yaml"
echo "shards: $(job_end sipplauncher-shards)"
kubectl apply -f "$here/merge-job.yaml"
merged=$(job_end sipplauncher-merge)
kubectl logs job/sipplauncher-merge

mkdir -p "$out"
for f in suite.json suite.xml suite.html; do
    kubectl cp "sipplauncher-data:/data/reports/$f" "$out/$f" || true
done
kubectl delete pod sipplauncher-data --wait=false
[ "$merged" = Complete ]
