#!/usr/bin/env bash
# A real one-node Slurm on loopback, for hpctune's Slurm tests and CI (Debian, as root).
#
#   scripts/local-slurm.sh          install slurm-wlm and munge if missing, configure, start, wait
#
# The node claims 16 CPUs whatever the machine has (config_overrides), so that tests can ask for
# more ranks than cores, as the other MPI tests oversubscribe. Files go to /var/lib/hpctune-slurm.
set -euo pipefail
DIR=${HPCTUNE_SLURM_DIR:-/var/lib/hpctune-slurm}
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi
mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm /run/munge /var/log/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- munged
fi
CONF_FILE=/etc/slurm/slurm.conf
cp -f "$CONF_FILE" "$DIR/slurm.conf.before" 2>/dev/null || : > "$DIR/slurm.conf.before"
cat > "$CONF_FILE" <<CONF
ClusterName=local
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmdParameters=config_overrides
SlurmctldParameters=preempt_send_user_signal
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
KillWait=10
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=16 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4 PriorityTier=1 GraceTime=30
PartitionName=urgent Nodes=localhost MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
# urgent: a higher tier whose jobs preempt (requeue) the debug partition's, after 30 s of grace
# this cluster's daemons by their pid files (scripts/virtual-cluster.sh runs others beside them)
# (a pid file a copied or rebooted machine kept may name another process: its name is checked too)
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && grep -qx 'slurm[a-z]*' "/proc/$(cat "$1")/comm"; }
if ! cmp -s "$CONF_FILE" "$DIR/slurm.conf.before" && alive "$DIR/slurmctld.pid"; then
    kill "$(cat "$DIR/slurmctld.pid")"; alive "$DIR/slurmd.pid" && kill "$(cat "$DIR/slurmd.pid")"   # a changed configuration: start again with it
    while alive "$DIR/slurmctld.pid" || alive "$DIR/slurmd.pid"; do sleep 0.2; done
fi
# started with no state (-c): a job an earlier start left queued (its test's folder long gone) would
# run beside the tests' own
alive "$DIR/slurmctld.pid" || slurmctld -c
alive "$DIR/slurmd.pid" || slurmd
for _ in $(seq 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "local Slurm is up: $(sinfo -h -o '%P %D %T %c')"
        exit 0
    fi
    scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
    sleep 1
done
echo "local Slurm did not come up; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
exit 1
