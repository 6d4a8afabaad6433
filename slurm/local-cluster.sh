#!/usr/bin/env bash
# A real SLURM cluster of N nodes on this one machine, with job accounting.
#
#   slurm/local-cluster.sh start|stop|status
#
# Runs as root (the daemons do). Starts munged, MariaDB + slurmdbd (so that `sacct`
# answers and submitit sees real job states), slurmctld and one `slurmd -N nK` per node,
# each node on its own port with its own spool folder, node names resolvable through
# /etc/hosts. Needs Debian's slurm-wlm, slurmdbd, munge and mariadb-server.
# A finished job leaves slurmctld's memory after MinJobAge=4 s (accounting keeps it): `sbatch
# --wait` polls at 2 s, 8 s, 32 s... but never longer than MinJobAge/2, so here it returns within
# 2 s of the job's end (measured, a 12 s job: 42 s at the default 300, 14 s at 4).
#
# Settings (environment): LOCAL_SLURM_NODES (2), LOCAL_SLURM_CPUS_PER_NODE (nproc/nodes,
# at least 1), LOCAL_SLURM_DIR (/var/tmp/ecgdist-slurm), LOCAL_SLURM_CLUSTER (ecgdist).
set -euo pipefail

nodes=${LOCAL_SLURM_NODES:-2}
cpus=${LOCAL_SLURM_CPUS_PER_NODE:-$(( $(nproc) / nodes > 0 ? $(nproc) / nodes : 1 ))}
state=${LOCAL_SLURM_DIR:-/var/tmp/ecgdist-slurm}
cluster=${LOCAL_SLURM_CLUSTER:-ecgdist}
conf_dir=/etc/slurm
host=$(hostname -s)
node_names() { for i in $(seq 1 "$nodes"); do printf 'n%d ' "$i"; done; }

log() { printf '[local-cluster] %s\n' "$*" >&2; }

write_configs() {
    mkdir -p "$state"/{spool,run,log,ctld} "$conf_dir"
    local node_lines="" i
    for i in $(seq 1 "$nodes"); do
        node_lines+="NodeName=n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$((17000 + i)) CPUs=$cpus State=UNKNOWN"$'\n'
    done
    cat >"$conf_dir/slurm.conf" <<EOF
# Written by ecgdist slurm/local-cluster.sh: $nodes nodes on one machine.
ClusterName=$cluster
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/%n
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd-%n.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=10
InactiveLimit=0
MinJobAge=4
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$node_lines
PartitionName=debug Nodes=$(node_names | xargs | tr ' ' ',') Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    cat >"$conf_dir/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$state/log/slurmdbd.log
PidFile=$state/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$conf_dir/slurmdbd.conf"
    # Node names must resolve: a master address taken from the node list is one of them.
    local name
    for name in $(node_names); do
        grep -qE "^127\.0\.0\.1[[:space:]].*\b$name\b" /etc/hosts || echo "127.0.0.1 $name" >>/etc/hosts
    done
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq 1 $((seconds * 2))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    log "timed out waiting for $what"; return 1
}

start_munge() {
    pgrep -x munged >/dev/null && return 0
    [ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
    wait_for 20 munged bash -c 'munge -n | unmunge'
}

start_database() {
    if ! mysqladmin ping >/dev/null 2>&1; then
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
        (setsid mysqld_safe >"$state/log/mariadb.log" 2>&1 &)
        wait_for 60 mariadb mysqladmin ping
    fi
    mysql -u root <<'EOF'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start() {
    write_configs
    start_munge
    start_database
    pgrep -x slurmdbd >/dev/null || slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -n list cluster format=cluster | grep -qw "$cluster" || sacctmgr -i add cluster "$cluster" >/dev/null
    start_controller
    local name
    for name in $(node_names); do
        pgrep -f "slurmd -N $name\$" >/dev/null || slurmd -N "$name"
    done
    wait_for 90 "all $nodes nodes idle" all_idle || { diagnose; return 1; }
    log "cluster '$cluster' up: $nodes nodes x $cpus CPUs"
    sinfo
}

start_controller() {
    pgrep -x slurmctld >/dev/null && return 0
    slurmctld
    wait_for 60 slurmctld scontrol ping
    # A controller started afresh recovers the jobs of a run that was killed with the
    # machine (a session that ended mid-test, a machine restored from a snapshot): their
    # nodes stay allocated to processes that no longer exist, and no test job would start.
    local stale
    stale=$(squeue -h -o %A | sort -u | xargs)
    if [ -n "$stale" ]; then
        log "cancelling jobs recovered from an earlier run: $stale"
        # shellcheck disable=SC2086
        scancel $stale
    fi
}

no_daemons() {
    ! pgrep -x 'slurmd|slurmctld|slurmdbd' >/dev/null
}

all_idle() {
    # A node drained by an earlier run (e.g. "Kill task failed") is put back in service.
    local drained
    drained=$(sinfo -h -N -t drain,down -o %N | sort -u | xargs | tr ' ' ',')
    [ -z "$drained" ] || scontrol update nodename="$drained" state=resume
    local idle
    idle=$(sinfo -h -N -o '%N %T' | awk '$2 == "idle" {n++} END {print n+0}')
    [ "$idle" -eq "$nodes" ]
}

diagnose() {  # what to read when the cluster does not come up
    sinfo -N -l >&2 || true
    squeue >&2 || true
    local f
    for f in "$state"/log/slurmctld.log "$state"/log/slurmd-*.log; do
        [ -f "$f" ] && { log "last lines of $f:"; tail -n 15 "$f" >&2; }
    done
}

stop() {
    pkill -x slurmd || true
    pkill -x slurmctld || true
    pkill -x slurmdbd || true
    mysqladmin shutdown >/dev/null 2>&1 || true
    # Gone before this returns: a start right after would otherwise find a daemon still saving its
    # state, take it for running, and wait on a controller that then exits.
    wait_for 60 "the daemons to exit" no_daemons
    log "stopped"
}

status() {
    scontrol ping && sinfo -N && sacctmgr -n list cluster format=cluster
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
