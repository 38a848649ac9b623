#!/usr/bin/env bats
# Squid's SMP mode in the image: `workers 2` in a mounted squid.conf gives two
# serving workers below Squid's master, on a read-only root as an arbitrary
# UID in group 0; a killed worker is restarted, logged and counted; a stop
# ends the whole tree with exit 0.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

# Only the documented writable directories; /dev/shm is the engine's own tmpfs.
HARDENED+=(--user 1234567:0)

start_smp_proxy() {
    local name=$1 conf=$BATS_TEST_TMPDIR/squid.conf
    echo 'workers 2' | custom_squid_conf | write_file "$conf" 0644
    start_proxy "$name" "${HARDENED[@]}" -v "$conf:/etc/squid/squid.conf:ro"
    wait_ready "$name"
}

# kids NAME: "PID NAME" for each kid of Squid's master, read from the host.
kids() {
    local master child argv0
    master=$(child_host_pid "$1" squid) || return 1
    for child in $(host_children "$master"); do
        argv0=$(tr '\0' '\n' <"/proc/$child/cmdline" 2>/dev/null | head -n 1)
        [[ "$argv0" == "("*")" ]] && echo "$child ${argv0:1:-1}"
    done
    return 0
}

# holds_listener PID: the process holds a socket listening on 3128 (0C38).
holds_listener() {
    local inode
    for inode in $(awk '$2 ~ /:0C38$/ && $4 == "0A" { print $10 }' /proc/"$1"/net/tcp /proc/"$1"/net/tcp6); do
        ls -l /proc/"$1"/fd 2>/dev/null | grep -q "socket:\[$inode\]" && return 0
    done
    return 1
}

@test "workers 2 on a read-only root as UID 1234567: two serving workers, stop exits 0" {
    local name pid kid
    name=$(cname smp)
    start_smp_proxy "$name"
    wait_log "$name" "Squid serves with 2 workers (SMP)"
    run kids "$name"
    [ "$(printf '%s\n' "$output" | awk '{ print $2 }' | sort | tr '\n' ' ')" = "squid-1 squid-2 squid-coord-3 " ] \
        || fail "kids: $output"
    while read -r pid kid; do
        [[ "$kid" == squid-coord-* ]] && continue
        holds_listener "$pid" || fail "$kid (PID $pid) does not hold the listening socket"
    done <<<"$output"
    for i in 1 2 3 4; do
        run http_code proxy_curl "$name" "$(origin_url "/hello/smp$i")"
        [ "$output" = 200 ] || fail "request $i: $output"
    done
    run container_logs "$name"
    [[ "$output" == *"kid1| "* && "$output" == *"kid2| "* ]] || fail "$output"  # both relayed
    [[ "$output" != *"[ERROR]"* ]] || fail "$output"
    local took
    took=$(stop_container "$name")
    [ "$(exit_code "$name")" = 0 ]
    [ "$took" -lt 8000 ] || fail "stop took $took ms"
    run container_logs "$name"
    [[ "$output" == *"Shutdown complete"* ]] || fail "$output"
}

@test "a killed worker is restarted by Squid, logged, counted in /metrics; the container stays up" {
    local name victim
    name=$(cname smp-kill)
    start_smp_proxy "$name"
    victim=$(kids "$name" | awk '$2 == "squid-2" { print $1 }')
    [ -n "$victim" ] || fail "no squid-2"
    kill -KILL "$victim"
    wait_log "$name" "Squid restarted its kid squid-2 (PID "
    run container_logs "$name"
    [[ "$output" == *"[WARNING] Squid kid squid-2 (PID "*") exited; Squid's master restarts it"* ]] || fail "$output"
    run health_curl "$name" /metrics
    [[ "$output" == *$'\ncephaloproxy_squid_kid_restarts_total 1\n'* ]] || fail "$output"
    [ "$(container_status "$name")" = running ]
    run http_code health_curl "$name" /ready
    [ "$output" = 200 ]
    run http_code proxy_curl "$name" "$(origin_url /hello/after-kill)"
    [ "$output" = 200 ]
    stop_container "$name" >/dev/null
    [ "$(exit_code "$name")" = 0 ]
}
