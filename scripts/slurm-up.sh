#!/bin/sh
# Starts a one-node Slurm cluster on this machine (as root, without systemd) for bgflow's
# Slurm tests and scripts/bench-slurm.sh. It installs nothing: Debian's slurm-wlm, slurmctld,
# slurmd and munge must be there (.ci/run installs them). Idempotent: a cluster already up is
# left as it is.
#
#   scripts/slurm-up.sh          start (or check) the cluster, wait until its node is idle
#   scripts/slurm-up.sh down     stop the daemons this script started
#
# Processes are tracked by the job script's process group (proctrack/pgid: cgroups need
# systemd or a pure cgroup v2 here), so a job's processes are killed when it ends even if
# its script died. The cluster: one node (this machine, as `slurmd -C` describes it, reached at 127.0.0.1 so
# that its name need not resolve), one partition `debug` where 4 jobs may share a core,
# no accounting database; finished jobs stay visible to `squeue` for 10 minutes
# (MinJobAge=600) and are written to a job completion log that `sacct -c` reads. Jobs are
# scheduled in submission order at once, without the batch delay, and at least once a second
# (sched/builtin, batch_sched_delay=0, sched_interval=1); they are killed 2 s after SIGTERM
# (KillWait=2).
set -eu

conf_dir=/etc/slurm
log_dir=/var/log/slurm
spool=/var/spool

if [ "${1:-}" = down ]; then
    for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
        if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    exit 0
fi

for tool in munged slurmctld slurmd sinfo scontrol; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "slurm-up: $tool is not installed (apt-get install -y slurm-wlm slurmctld slurmd munge)" >&2
        exit 1
    }
done

host=$(hostname -s)
mkdir -p "$conf_dir" "$log_dir" "$spool/slurmctld" "$spool/slurmd" /run/munge
node_line=$(slurmd -C | head -n 1)

if [ ! -f "$conf_dir/slurm.conf" ] || ! grep -q '^# bgflow one-node cluster' "$conf_dir/slurm.conf"; then
    cat > "$conf_dir/slurm.conf" <<CONF
# bgflow one-node cluster (scripts/slurm-up.sh)
ClusterName=bgflow
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$spool/slurmctld
SlurmdSpoolDir=$spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$log_dir/jobcomp.log
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_interval=1,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=600
KillWait=2
InactiveLimit=0
ReturnToService=2
MpiDefault=none
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
fi

# Whether a live (not zombie) process has this exact name.
alive() {
    for pid in $(pgrep -x "$1" || true); do
        state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
        if [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]; then
            return 0
        fi
    done
    return 1
}

# munge: its key comes with the package; the daemon runs as its own user.
if ! alive munged; then
    chown munge:munge /run/munge
    su -s /bin/sh munge -c munged || munged --force
fi
if ! alive slurmctld; then
    slurmctld
fi
if ! alive slurmd; then
    slurmd
fi

# Wait (30 s at most, each query bounded too) until the node takes jobs.
deadline=$(($(date +%s) + 30))
while :; do
    state=$(timeout 5 sinfo --noheader --nodes="$host" --format=%T 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle*|mixed*|allocated*) break ;;
        down*|drain*|fail*) timeout 5 scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "slurm-up: node $host is not ready after 30 s (state: ${state:-none}); see $log_dir/" >&2
        exit 1
    fi
    sleep 0.5
done
echo "slurm-up: one-node cluster up: node $host, partition debug ($state)"
