#!/usr/bin/env bats
# The supervisor watches its children: Squid's death ends the container at once
# with exit code 1 (an orchestrator restarts it); the health server's death is
# repaired without taking the proxy down. The image has no kill binary (and no
# shell), so the processes are killed from the host, through /proc.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

SQUID_DEATH_MAX_MS=${SQUID_DEATH_MAX_MS:-2000}

@test "kill -9 of Squid: the container exits 1 within 2 s and logs why" {
    local name pid killed_at exited_at
    name=$(cname squid-killed)
    start_proxy "$name"
    wait_ready "$name"
    pid=$(child_host_pid "$name" squid)
    killed_at=$(now_ms)
    kill -9 "$pid"
    wait_exited "$name" 10
    exited_at=$(now_ms)
    [ $(( exited_at - killed_at )) -le "$SQUID_DEATH_MAX_MS" ] \
        || fail "the container exited $(( exited_at - killed_at )) ms after Squid's death"
    [ "$(exit_code "$name")" = 1 ] || fail "exit code $(exit_code "$name")"
    run container_logs "$name"
    [[ "$output" == *"[ERROR] Squid process died: killed by SIGKILL"* ]] || fail "$output"
}

@test "the health server is restarted when it dies, and the proxy keeps serving" {
    local name pid
    name=$(cname health-killed)
    start_proxy "$name"
    wait_ready "$name"
    pid=$(child_host_pid "$name" python3 health-server)
    kill -9 "$pid"
    wait_log "$name" "Health check server restarted (PID: " 10
    wait_ready "$name" 10
    [ "$(container_status "$name")" = running ]
    run http_code proxy_curl "$name" "$(origin_url /hello/after-health-restart)"
    [ "$output" = 200 ]
}
