#!/usr/bin/env bats
# What users of the Docker Engine rely on and podman does not show: Docker runs
# the image's HEALTHCHECK itself (podman needs systemd timers for it), `docker
# stop` with its default 10 s, `docker logs`, and the hardened `docker run`.
# (docker only.)

load helpers

setup_file() {
    engine_only docker "Docker Engine behaviours" || return 0
    suite_setup_file --origin
}
setup() { skip_other_engine; }
teardown_file() { suite_teardown_file; }
teardown() {
    # A frozen Squid is thawed first, so that its container stops as usual.
    if [ -n "${FROZEN:-}" ]; then kill -CONT "$FROZEN" 2>/dev/null || true; fi
    suite_teardown
}

IDLE_STOP_MAX_MS=${IDLE_STOP_MAX_MS:-6000}

# The image checks every 30 s after a 60 s start period; the same check, with
# bounds a test can wait for.
FAST_HEALTHCHECK=(--keep-healthcheck --health-interval 1s --health-timeout 2s --health-retries 2
                  --health-start-period 0s)

@test "Docker's HEALTHCHECK turns healthy on a ready proxy" {
    local name
    name=$(cname healthy)
    start_proxy "$name" "${FAST_HEALTHCHECK[@]}"
    wait_ready "$name"
    wait_health "$name" healthy 20
}

@test "Docker's HEALTHCHECK turns unhealthy when Squid stops answering (SIGSTOP)" {
    local name
    name=$(cname frozen)
    start_proxy "$name" "${FAST_HEALTHCHECK[@]}"
    wait_ready "$name"
    wait_health "$name" healthy 20
    FROZEN=$(child_host_pid "$name" squid)
    kill -STOP "$FROZEN"
    run http_code proxy_curl "$name" --max-time 3 "$(origin_url /hello/frozen)"
    [ "$output" != 200 ] || fail "a frozen Squid answered: $output"
    # Two failed checks a second apart, each given 2 s.
    wait_health "$name" unhealthy 20
}

@test "docker stop with Docker's default 10 s stops an idle proxy with exit 0 in about Squid's own time" {
    local name started took
    name=$(cname default-stop)
    start_proxy "$name"
    wait_ready "$name"
    started=$(now_ms)
    engine stop "$name" >/dev/null
    took=$(( $(now_ms) - started ))
    run exit_code "$name"
    [ "$output" = 0 ] || fail "exit code $output (137: SIGKILLed at Docker's 10 s)"
    # Squid alone needs ~1.5 s after its SIGINT; far below Docker's 10 s.
    [ "$took" -lt "$IDLE_STOP_MAX_MS" ] || fail "docker stop took ${took} ms"
    run container_logs "$name"
    [[ "$output" != *"Shutdown timeout"* ]] || fail "the supervisor's deadline was needed: $output"
}

@test "docker run --read-only --cap-drop ALL --user 31337:0 serves, and Docker reports it healthy" {
    local name
    name=$(cname hardened)
    start_proxy "$name" "${FAST_HEALTHCHECK[@]}" --read-only --cap-drop ALL --user 31337:0 \
        "${WRITABLE_TMPFS[@]}"
    wait_ready "$name"
    run proxy_curl "$name" "$(origin_url /hello/docker-hardened)"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"path=/hello/docker-hardened"* ]] || fail "$output"
    wait_health "$name" healthy 20
    run container_logs "$name"
    [[ "$output" == *"CephaloProxy entrypoint starting (UID: 31337, GID: 0)"* ]] || fail "$output"
}

@test "docker logs carries the whole start-up and shutdown sequence" {
    local name
    name=$(cname logs)
    start_proxy "$name"
    wait_ready "$name"
    run http_code proxy_curl "$name" "$(origin_url /hello/docker-logs)"
    [ "$output" = 200 ]
    engine stop "$name" >/dev/null
    [ "$(exit_code "$name")" = 0 ]
    # Straight from `docker logs`, both streams, no filter.
    run engine logs "$name"
    local logs=$output
    assert_logged_in_order "$name" \
        "${STARTUP_LINES[@]}" \
        "/hello/docker-logs" \
        "[INFO] Received signal SIGTERM, initiating graceful shutdown..." \
        "Exiting normally" \
        "[INFO] Shutdown complete"
    [[ "$logs" == *"Shutdown complete"* ]] || fail "$logs"
    [[ "$logs" != *"[ERROR]"* ]] || fail "$logs"
}
