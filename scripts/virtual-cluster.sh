#!/usr/bin/env bash
# A multi-node Slurm cluster on this one machine, for hpctune's cluster tests and CI (Debian, root).
#
#   scripts/virtual-cluster.sh up      N nodes (HPCTUNE_CLUSTER_NODES, default 3), wait until idle
#   scripts/virtual-cluster.sh down    stop every daemon, remove the namespaces, links and hosts lines
#   scripts/virtual-cluster.sh env     print the line that points Slurm's commands at this cluster
#   scripts/virtual-cluster.sh crash node3    lose a node: its slurmd and every process on it killed
#   scripts/virtual-cluster.sh revive node3   start its slurmd again and wait until it is idle
#   scripts/virtual-cluster.sh cut node3      cut a node off the network (its link down; it runs on)
#   scripts/virtual-cluster.sh reconnect node3    its link up again; wait until Slurm has it back
#   scripts/virtual-cluster.sh slow node3 SECONDS  for SECONDS, a node's job processes (all but its
#                                    slurmd and slurmstepd) run 1 s of every 4: stopped 3 s, let run 1 s
#
# Each node is a network namespace (hpcn1, hpcn2, ...) with its own hostname (node1, ...) and address
# (10.78.0.1, ...) on a bridge (hpcbr0, 10.78.0.254 on the host side), and its own slurmd; one
# slurmctld runs on the host, on ports of its own (6917/6918) beside the loopback cluster of
# scripts/local-slurm.sh, with its own configuration: commands reach it with
# SLURM_CONF=/var/lib/hpctune-cluster/slurm.conf. The filesystem is shared, as on a cluster.
# GPUs per node (HPCTUNE_CLUSTER_GPUS, default 2) are Slurm gres on placeholder device files
# (AutoDetect=off), so Slurm sets CUDA_VISIBLE_DEVICES for each job step as on a GPU cluster.
#
# Test settings, not production ones: a node that stops answering is DOWN after SlurmdTimeout=10 s,
# and a DOWN node comes back by itself once its slurmd answers again (ReturnToService=2).
set -euo pipefail
DIR=${HPCTUNE_CLUSTER_DIR:-/var/lib/hpctune-cluster}
NODES=${HPCTUNE_CLUSTER_NODES:-3}
GPUS=${HPCTUNE_CLUSTER_GPUS:-2}
NET=10.78.0
BRIDGE=hpcbr0
HOSTS_TAG="# hpctune virtual cluster"
export SLURM_CONF=$DIR/slurm.conf

# (a pid file a copied or rebooted machine kept may name another process: its name is checked too)
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && grep -qx 'slurm[a-z]*' "/proc/$(cat "$1")/comm"; }

down() {
    for pidfile in "$DIR"/slurmd-node*.pid "$DIR/slurmctld.pid"; do
        [ -e "$pidfile" ] || continue
        if pid_alive "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
        rm -f "$pidfile"
    done
    for ns in $(ip netns list 2>/dev/null | awk '/^hpcn[0-9]+/ {print $1}'); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true   # every process of the node
        ip netns del "$ns"
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    # rewritten in place, not replaced (sed -i would fail where /etc/hosts is a mount)
    local kept
    kept=$(grep -v "$HOSTS_TAG\$" /etc/hosts || true)
    printf '%s\n' "$kept" > /etc/hosts
}

up() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v nsenter >/dev/null \
            || ! command -v ip >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq slurm-wlm munge iproute2 util-linux >/dev/null
    fi
    down
    mkdir -p "$DIR/state" "$DIR/dev" /run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    chmod 400 /etc/munge/munge.key
    pgrep -x munged >/dev/null || runuser -u munge -- munged
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.254/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    local gres_files=""
    rm -f "$DIR"/dev/gpu*
    # Slurm wants a character device: each placeholder is one like /dev/null (major 1, minor 3)
    for g in $(seq 0 $((GPUS - 1))); do mknod -m 666 "$DIR/dev/gpu$g" c 1 3; done
    [ "$GPUS" -gt 0 ] && gres_files="$DIR/dev/gpu[0-$((GPUS - 1))]"
    for i in $(seq "$NODES"); do
        ip netns add "hpcn$i"
        ip link add "hpcv$i" type veth peer name "hpcv${i}p"
        ip link set "hpcv${i}p" netns "hpcn$i"
        ip link set "hpcv$i" master "$BRIDGE" up
        ip -n "hpcn$i" addr add "$NET.$i/24" dev "hpcv${i}p"
        ip -n "hpcn$i" link set "hpcv${i}p" up
        ip -n "hpcn$i" link set lo up
        echo "$NET.$i node$i $HOSTS_TAG" >> /etc/hosts
        mkdir -p "$DIR/spool-node$i"
    done
    local host
    host=$(hostname)
    echo "$NET.254 $host-cluster $HOSTS_TAG" >> /etc/hosts
    cat > "$SLURM_CONF" <<CONF
ClusterName=hpcbox
SlurmctldHost=$host($NET.254)
SlurmctldPort=6917
SlurmdPort=6918
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool-%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmdTimeout=10
MessageTimeout=5
TCPTimeout=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
KillWait=5
NodeName=node[1-$NODES] NodeAddr=$NET.[1-$NODES] CPUs=8 RealMemory=4000 Gres=gpu:$GPUS State=UNKNOWN
PartitionName=cluster Nodes=node[1-$NODES] Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
    if [ "$GPUS" -gt 0 ]; then
        printf 'AutoDetect=off\nNodeName=node[1-%s] Name=gpu File=%s\n' "$NODES" "$gres_files" > "$DIR/gres.conf"
    else
        : > "$DIR/gres.conf"
    fi
    # no state kept (-c): a job an earlier 'up' left queued would come back, take the nodes' GPUs and
    # run beside (or ahead of) the tests' own
    slurmctld -c -f "$SLURM_CONF"
    for i in $(seq "$NODES"); do
        # nsenter, not 'ip netns exec', which remounts /sys and so hides the cgroup mounts slurmd needs
        nsenter --net="/var/run/netns/hpcn$i" unshare --uts sh -c "hostname node$i; exec slurmd -f '$SLURM_CONF' -N node$i"
    done
    for _ in $(seq 60); do
        if [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cE '^(idle|mixed|allocated)$')" = "$NODES" ]; then
            echo "virtual cluster is up: $(sinfo -h -N -o '%N:%T' | tr '\n' ' ')(SLURM_CONF=$SLURM_CONF)"
            return 0
        fi
        scontrol update nodename="node[1-$NODES]" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    echo "the virtual cluster did not come up; see $DIR/slurmctld.log and $DIR/slurmd-node*.log" >&2
    return 1
}

# a node lost as a crash loses it: its slurmd and every process in it killed at once (all stopped
# first, so that none of them acts on another one's death, as none could on a node that went down)
crash() {
    local i=${1#node} pids
    pids=$(ip netns pids "hpcn$i" | tr '\n' ' ')
    if [ -n "$pids" ]; then kill -STOP $pids; kill -9 $pids; fi
    rm -f "$DIR/slurmd-node$i.pid"
}

# the node back: its slurmd started again; waits until Slurm has it idle
revive() {
    local i=${1#node}
    nsenter --net="/var/run/netns/hpcn$i" unshare --uts sh -c "hostname node$i; exec slurmd -f '$SLURM_CONF' -N node$i"
    back "node$i" idle
}

# wait until Slurm has the node ($1) back in a state that matches $2 (an extended regex), up to 60 s
back() {
    for _ in $(seq 60); do
        scontrol update nodename="$1" state=resume >/dev/null 2>&1 || true
        sinfo -h -n "$1" -N -o '%T' | grep -qxE "$2" && return 0
        sleep 1
    done
    echo "$1 did not come back; see $DIR/slurmd-$1.log" >&2
    return 1
}

# a node cut off: the host's end of its link down (the node runs on, unreachable, and reaches nothing)
cut() { ip link set "hpcv${1#node}" down; }
# the link up again; waits until Slurm has the node back (a node that was DOWN, idle once more)
reconnect() {
    ip link set "hpcv${1#node}" up
    back "$1" "idle|mixed|allocated"
}

# a slow node: its job's processes (not Slurm's own, which go on answering) throttled to a quarter
# of their speed for SECONDS, by stopping them 3 s of every 4; each process is let run again at the end
slow() {
    local i=${1#node} until=$((SECONDS + $2)) pids
    job_pids() {
        for pid in $(ip netns pids "hpcn$i"); do
            case "$(cat "/proc/$pid/comm" 2>/dev/null)" in slurmd|slurmstepd|"") ;; *) echo "$pid" ;; esac
        done
    }
    while [ "$SECONDS" -lt "$until" ]; do
        pids=$(job_pids | tr '\n' ' ')
        [ -z "$pids" ] || kill -STOP $pids 2>/dev/null || true
        sleep 3
        [ -z "$pids" ] || kill -CONT $pids 2>/dev/null || true
        sleep 1
    done
    pids=$(job_pids | tr '\n' ' ')
    [ -z "$pids" ] || kill -CONT $pids 2>/dev/null || true
    return 0
}

case "${1:-}" in
    up) up ;;
    down) down; echo "virtual cluster is down" ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    crash) crash "${2:?usage: $0 crash nodeN}" ;;
    revive) revive "${2:?usage: $0 revive nodeN}" ;;
    cut) cut "${2:?usage: $0 cut nodeN}" ;;
    reconnect) reconnect "${2:?usage: $0 reconnect nodeN}" ;;
    slow) slow "${2:?usage: $0 slow nodeN SECONDS}" "${3:?usage: $0 slow nodeN SECONDS}" ;;
    *) echo "usage: $0 up|down|env|crash nodeN|revive nodeN|cut nodeN|reconnect nodeN|slow nodeN SECONDS" >&2
       exit 2 ;;
esac
