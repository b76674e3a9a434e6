#!/usr/bin/env bash
# Runs a 2-rank MPI job across two network namespaces joined by a veth pair, one rank in each,
# talking TCP (the shared-memory transport cannot be used: the ranks are on "different hosts").
# As root only (ip netns); exits 77 with a message when the namespaces cannot be made.
# Usage: tools/netns-mpirun.sh [mpirun options --] PROGRAM ARGS...
#   e.g. tools/netns-mpirun.sh -x FOCUS_NUM_THREADS=1 -- build/focus train ...
# mpirun runs inside the first namespace; the rank of the second host is started by an rsh agent
# that runs OpenMPI's daemon under `ip netns exec` of the second namespace. Paths must be absolute
# or relative to the current directory (both namespaces share the file system).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "netns-mpirun: needs root (ip netns)" >&2
  exit 77
fi
command -v mpirun >/dev/null || { echo "netns-mpirun: mpirun not installed" >&2; exit 77; }
opts=()
if [[ " $* " == *" -- "* ]]; then
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
fi
tag=$$
net=10.$((200 + tag % 50)).$(((tag / 50) % 250)).0
a=focus_a_$tag b=focus_b_$tag
ipa=${net%.0}.1 ipb=${net%.0}.2
dir=$(mktemp -d /tmp/focus-netns.XXXXXX)
cleanup() {
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
if ! { ip netns add "$a" && ip netns add "$b" &&
       ip link add "va$tag" type veth peer name "vb$tag" &&
       ip link set "va$tag" netns "$a" && ip link set "vb$tag" netns "$b" &&
       ip -n "$a" addr add "$ipa/24" dev "va$tag" && ip -n "$b" addr add "$ipb/24" dev "vb$tag" &&
       ip -n "$a" link set "va$tag" up && ip -n "$b" link set "vb$tag" up &&
       ip -n "$a" link set lo up && ip -n "$b" link set lo up; } 2>"$dir/err"; then
  echo "netns-mpirun: cannot make network namespaces: $(head -1 "$dir/err")" >&2
  exit 77
fi
# The rsh agent: "agent [options] HOST COMMAND..." runs COMMAND in HOST's namespace.
cat >"$dir/agent" <<AGENT
#!/bin/sh
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
case "\$host" in $ipa) ns=$a ;; $ipb) ns=$b ;; *) echo "netns agent: unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$dir/agent"
set +e
# --bind-to none: each "host" would otherwise pin its rank to its core 0, the same core here, and
# the two busy-polling ranks would share it (all-reduces of milliseconds instead of microseconds).
ip netns exec "$a" mpirun --allow-run-as-root --bind-to none -H "$ipa:1,$ipb:1" -np 2 \
  --mca plm_rsh_agent "$dir/agent" --mca btl tcp,self \
  --mca btl_tcp_if_include "$net/24" --mca oob_tcp_if_include "$net/24" "${opts[@]}" "$@"
rc=$?
exit $rc
