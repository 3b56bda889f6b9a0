#!/bin/bash
# make slurm-test: a one-node Slurm cluster on this Debian machine, and every sbatch script of labs/slurm/
# (the five labs, a student notebook, the two fine-tune scripts, the fne array with its merge, the paper study).
#
# As root: apt-get installs slurm-wlm and munge; munged runs as user munge; slurmctld and slurmd
# are started by hand with a generated slurm.conf (proctrack/linuxproc, task/none: no cgroups, so
# it also works in a container). Each lab script runs at small size (KERAS_TL_LAB_SMALL=1); the
# fine_tune scripts get a tiny run (one node, two tasks for the multi-node script, their --gres
# line removed: this machine has no GPU). A job passes when Slurm says COMPLETED and its outputs
# exist; tests/test_slurm.py runs against the cluster too. The daemons are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
STATE=${SLURM_TEST_STATE:-/tmp/keras_tl_slurm}
TIMEOUT=${SLURM_TEST_TIMEOUT:-1800}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

mkdir -p "$STATE"/{spool,state,log} /etc/munge /run/munge /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0400 /etc/munge/munge.key
pgrep -u munge munged >/dev/null || runuser -u munge -- munged

HOST=$(hostname -s)
CPUS=$(nproc)
MEMORY=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
CONF_DIR=/etc/slurm
mkdir -p "$CONF_DIR"
cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=keras-tl-test
SlurmctldHost=$HOST
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=86400
MpiDefault=none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEMORY State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
rm -f "$CONF_DIR/cgroup.conf"

stop() {
    for daemon in slurmd slurmctld; do
        [ -s "$STATE/$daemon.pid" ] && kill "$(cat "$STATE/$daemon.pid")" 2>/dev/null || true
    done
}
trap stop EXIT
stop
sleep 1
slurmctld -c  # a clean state: no jobs left from an earlier test
slurmd
for _ in $(seq 30); do sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break; sleep 1; done
sinfo

mkdir -p runs
export KERAS_TL_LAB_SMALL=1
# name | command that submits and prints the job id | output to check (JOB replaced by the id)
submit() { sbatch --parsable --cpus-per-task=1 --mem=2G "$@"; }
declare -A OUTPUT
for lab in 1 2 3 4 5; do
    job=$(submit "labs/slurm/lab$lab.sbatch")
    OUTPUT[$job]="runs/lab$lab-slurm-$job/results.json"
done
job=$(submit labs/slurm/notebook.sbatch labs/student/lab3_word_embeddings.ipynb)  # what a student runs
OUTPUT[$job]="runs/notebook-$job/lab3_word_embeddings.html"
tiny="--epochs 1 --train-per-class 5 --test-per-class 2 --image-size 32 --batch-size 8 --quiet"
job=$(sed '/--gres/d' labs/slurm/paper.sbatch | submit /dev/stdin)  # the paper study, small (KERAS_TL_LAB_SMALL)
OUTPUT[$job]="runs/study-paper-slurm-$job/report.md"
job=$(sed '/--gres/d; /--mixed-precision/s/ --mixed-precision//' labs/slurm/one_gpu.sbatch | submit /dev/stdin $tiny)
OUTPUT[$job]="runs/fine_tune-slurm-$job/metrics.json"
job=$(sed '/--gres/d; /--mixed-precision/s/ --mixed-precision//' labs/slurm/multi_node.sbatch \
      | submit --nodes=1 --ntasks-per-node=2 /dev/stdin $tiny)
OUTPUT[$job]="runs/fine_tune-slurm-$job/metrics.json"
# fne in parts: the 2-task array, the merge after it, one single run in its own cache, and a last
# job that checks the merged run against the single one (features bit-identical, same accuracies).
fne_tiny="--train-per-class 4 --test-per-class 2 --image-size 32 --batch-size 8 --weights none --quiet"
fne_cache="runs/fne-array-cache-$(date +%s)"
array=$(sed '/--gres/d' labs/slurm/fne_array.sbatch | submit /dev/stdin $fne_tiny --cache-dir "$fne_cache")
merged="runs/fne-slurm-$array" single="runs/fne-single-$array"
merge=$(submit --dependency="afterok:$array" --kill-on-invalid-dep=yes --output=runs/slurm-%j.out \
        --wrap ".venv/bin/python -m keras_tl.fne $fne_tiny --cache-dir $fne_cache --output-dir $merged")
one=$(submit --output=runs/slurm-%j.out \
      --wrap ".venv/bin/python -m keras_tl.fne $fne_tiny --cache-dir $fne_cache-single --output-dir $single")
cat > "$STATE/compare_fne.py" <<'PY'
import json, pathlib, sys
import numpy as np
merged, single = (pathlib.Path(name) for name in sys.argv[1:3])
metrics = {run: json.loads((run / "metrics.json").read_text()) for run in (merged, single)}
parts = [json.loads((merged / f"part-{index}-of-2" / "metrics.json").read_text()) for index in range(2)]
assert [part["shard"] for part in parts] == ["0/2", "1/2"] and sum(part["images_extracted"] for part in parts) == 60
assert metrics[merged]["images_extracted"] == 0 and metrics[merged]["images_from_cache"] == 60
for split in ("train", "test"):
    assert np.array_equal(np.load(merged / "features" / f"{split}.npy"), np.load(single / "features" / f"{split}.npy"))
assert ({name: method["accuracy"] for name, method in metrics[merged]["methods"].items()}
        == {name: method["accuracy"] for name, method in metrics[single]["methods"].items()})
(merged / "same_as_single_run.txt").write_text("features bit-identical, accuracies equal\n")
PY
job=$(submit --dependency="afterok:$merge:$one" --kill-on-invalid-dep=yes --output=runs/slurm-%j.out \
      --wrap ".venv/bin/python $STATE/compare_fne.py $merged $single")
OUTPUT[$job]="$merged/same_as_single_run.txt"

deadline=$((SECONDS + TIMEOUT))
while squeue -h | grep -q .; do
    [ $SECONDS -lt $deadline ] || { echo "timeout: jobs still queued or running"; squeue; exit 1; }
    sleep 10
done
failed=0
# tests/test_slurm.py runs only where a cluster answers: here, while this one is up.
.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_slurm.py || failed=1
for job in "${!OUTPUT[@]}"; do
    state=$(sacct -n -X -j "$job" -o State 2>/dev/null | tr -d ' ' || true)
    [ -n "$state" ] || state=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z]*' | cut -d= -f2)
    if [ "$state" = COMPLETED ] && [ -s "${OUTPUT[$job]}" ]; then
        echo "ok   job $job: $state, ${OUTPUT[$job]}"
    else
        echo "FAIL job $job: ${state:-unknown}, ${OUTPUT[$job]} $( [ -s "${OUTPUT[$job]}" ] && echo present || echo missing)"
        tail -20 "runs/slurm-$job.out" || true
        failed=1
    fi
done
exit $failed
