#!/bin/bash
# SSH failures give clear reasons: an sshd killed mid-stage (its tasks retry,
# then fail), a host whose key changed is refused, an unreachable jump host,
# a machine without libssh2 (runwarden loads it on its first connection).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
hosts_up 2
D=$IT_DIR/remote
mkdir -p "$D"

# 1. h2's sshd dies while its task runs: retries cannot reconnect, the run FAILS.
plan_file sshd-dies <<EOF
stages:
  - name: work
    retries: 1
    retry_delay: 500ms
    tasks:
      - {name: steady, on: h1, run: 'sleep 2'}
      - {name: doomed, on: h2, run: 'touch $D/doomed.started; sleep 60'}
EOF
start_run -q --build-name sshd-dies --plan "$IT_DIR/work/sshd-dies.yaml"
wait_for -t 60 -m "task on h2 running" test -e "$D/doomed.started"
# The host's sshd dies with everything it serves: the listener and the
# session of our task (processes of that namespace, all started by this test).
for p in $(ip netns pids "${RW_NETNS_PREFIX}h2"); do kill -KILL "$p" 2>/dev/null || true; done
wait_status sshd-dies FAILED 120
st=$("$RW_BIN" status sshd-dies --json)
assert_contains "$st" '"attempts": 2' "the task was retried"
assert_contains "$st" "h2 (" "the reason names the host"
assert_contains "$("$RW_BIN" status sshd-dies)" "COMPLETED" "the task on h1 completed"
wait_watcher_done sshd-dies
assert_contains "$(receiver_bodies | tail -n 1)" "work / doomed @ h2" "the message names stage, task, target"

# 2. A changed host key is refused, with a clear message.
sed "s|^$RW_NETNS_HOST_NET.11 .*|$RW_NETNS_HOST_NET.11 $(cut -d' ' -f1,2 "$HOSTS_DIR/${RW_NETNS_PREFIX}g1/ssh_host_ed25519_key.pub")|" \
  "$RW_NETNS_KNOWN_HOSTS" >"$IT_DIR/work/wrong_known_hosts"
sed "s|known_hosts: $RW_NETNS_KNOWN_HOSTS|known_hosts: $IT_DIR/work/wrong_known_hosts|" "$IT_DIR/hosts.yaml" >"$IT_DIR/work/wrong-hosts.yaml"
{ echo "version: 1"; cat "$IT_DIR/work/wrong-hosts.yaml"; echo "stages: [{name: s, tasks: [{name: t, on: h1, run: 'touch $D/mitm'}]}]"; } >"$IT_DIR/work/mitm.yaml"
rc=0; out=$("$RW_BIN" exec --plan "$IT_DIR/work/mitm.yaml" --on h1 -- touch "$D/mitm" 2>&1) || rc=$?
assert_eq "$rc" 1 "exec fails on a changed host key"
assert_contains "$out" "changed" "message says the key changed"
test ! -e "$D/mitm" || fail "the command ran on a host with a changed key"

# 3. An unreachable jump host: the guest's error names it.
sed "s|address: $RW_NETNS_HOST_NET.11|address: $RW_NETNS_HOST_NET.99|" "$IT_DIR/hosts.yaml" >"$IT_DIR/work/nojump-hosts.yaml"
{ echo "version: 1"; cat "$IT_DIR/work/nojump-hosts.yaml"; echo "stages: [{name: s, tasks: [{name: t, on: g1, run: 'true'}]}]"; } >"$IT_DIR/work/nojump.yaml"
rc=0; out=$(timeout 120 "$RW_BIN" exec --plan "$IT_DIR/work/nojump.yaml" --on g1 -- true 2>&1) || rc=$?
assert_eq "$rc" 1 "exec fails through an unreachable jump host"
assert_contains "$out" "h1" "the error names the jump host"
assert_contains "$out" "$RW_NETNS_HOST_NET.99" "the error names its address"

# 4. runwarden loads libssh2 on its first connection: where it cannot be
# loaded (hidden in a private mount namespace), the error names the library
# and its package; with it, the same command works.
{ echo "version: 1"; cat "$IT_DIR/hosts.yaml"; echo "stages: [{name: s, tasks: [{name: t, on: h1, run: 'true'}]}]"; } >"$IT_DIR/work/nolib.yaml"
libssh2=$(readlink -f "$(ldconfig -p | awk '/libssh2\.so\.1 /{print $NF; exit}')")
[[ -f $libssh2 ]] || fail "libssh2.so.1 not found by ldconfig"
rc=0; out=$(unshare -m sh -c 'mount --bind /dev/null "$1"; shift; exec "$@"' _ "$libssh2" \
  "$RW_BIN" exec --plan "$IT_DIR/work/nolib.yaml" --on h1 -- touch "$D/nolib" 2>&1) || rc=$?
assert_eq "$rc" 1 "exec fails without libssh2"
assert_contains "$out" "cannot load libssh2.so.1 (install libssh2-1)" "the error names the library and its package"
test ! -e "$D/nolib" || fail "the command ran without libssh2"
out=$("$RW_BIN" exec --plan "$IT_DIR/work/nolib.yaml" --on h1 -- touch "$D/nolib" 2>&1) || fail "exec with libssh2: $out"
test -e "$D/nolib" || fail "the command did not run with libssh2 loaded on demand"
pass
