#!/bin/sh
# Attach py-spy to every service of a running bench (or to the PIDs given).
#
#   bench/profile.sh [SECONDS] [OUTDIR] [PID...]   # flamegraphs, all services at once
#   PYSPY=dump bench/profile.sh                    # one stack dump of each, now
#
# Without PIDs it reads bench/results/pids.txt, which `python -m bench` writes
# when its stack has started ("name pid" lines). Run it from another terminal
# while a scenario is under way. py-spy needs ptrace rights (root, or
# kernel.yama.ptrace_scope=0, or CAP_SYS_PTRACE in a container).
# `python -m bench --profile DIR` does the same for scenario (a) by itself.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-20}
outdir=${2:-$here/results/profiles}
[ $# -ge 2 ] && shift 2 || shift $#
spy=$here/../.venv/bin/py-spy
[ -x "$spy" ] || spy=py-spy

if [ $# -gt 0 ]; then
    targets=$(for pid in "$@"; do echo "pid$pid $pid"; done)
else
    targets=$(grep -v '^sink ' "$here/results/pids.txt")
fi

mkdir -p "$outdir"
echo "$targets" | while read -r name pid; do
    if [ "${PYSPY:-record}" = dump ]; then
        echo "== $name ($pid)"
        "$spy" dump --pid "$pid"
    else
        "$spy" record --pid "$pid" --duration "$seconds" --rate 50 --nonblocking \
            --format flamegraph --output "$outdir/$name-$pid.svg" >/dev/null 2>&1 &
        echo "recording $name ($pid) for ${seconds}s -> $outdir/$name-$pid.svg"
    fi
done
wait
