#!/usr/bin/env bats
# Smoke suite of another architecture's image (make image PLATFORM=linux/arm64),
# run here under emulation (qemu-user-static): a subset of the acceptance suite.
# Start-up lines, /ready, a proxied request, a clean stop with exit 0, and an
# arbitrary UID in group 0.
#
#   PLATFORM=linux/arm64 ENGINE=podman bats tests/foreign-arch/
#
# IMAGE_NAME defaults to the tag make image gives that platform's image
# (cephaloproxy:trixie-arm64). Emulated programs run 5-20 times slower: the
# bounds are wider than the acceptance suite's, what is asserted is the same.

READY_TIMEOUT=${READY_TIMEOUT:-120}
load ../integration/helpers

ARCH=${PLATFORM#linux/}

setup_file() {
    suite_setup_file --origin
    # One proxy for the life-cycle tests, in order: start, serve, stop.
    export SMOKE=$CP_RUN_ID-default
    start_proxy "$SMOKE"
    wait_ready "$SMOKE"
}
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

@test "the image is for $ARCH, another architecture than this machine's" {
    [ "$ARCH" != "$NATIVE_ARCH" ] || fail "PLATFORM=$PLATFORM is this machine's own: nothing is emulated"
    run engine image inspect --format '{{.Architecture}}' "$IMAGE_NAME"
    [ "$output" = "$ARCH" ] || fail "$IMAGE_NAME is for '$output'"
}

@test "a default start logs the start-up contract's lines in order" {
    assert_logged_in_order "$SMOKE" "${STARTUP_LINES[@]}"
    run container_logs "$SMOKE"
    [[ "$output" != *"[ERROR]"* ]] || fail "an [ERROR] line on a clean start"
}

@test "/ready and /health answer 200" {
    run http_code health_curl "$SMOKE" /ready
    [ "$output" = 200 ]
    run http_code health_curl "$SMOKE" /health
    [ "$output" = 200 ]
}

@test "a request through the proxy reaches the origin and comes back" {
    local token="smoke-$RANDOM$RANDOM"
    run proxy_curl "$SMOKE" -i "$(origin_url "/hello/$token")"
    [ "$status" -eq 0 ] || fail "curl failed: $output"
    [[ "${lines[0]}" == "HTTP/1.1 200"* ]] || fail "status line: ${lines[0]}"
    [[ "$output" == *"path=/hello/$token"* ]] || fail "origin body missing: $output"
    [[ "$output" == *"via=1.1 "*"(squid"* ]] || fail "no Via from Squid: $output"
}

@test "a stop ends it cleanly with exit code 0, well before the engine's SIGKILL" {
    local took
    took=$(stop_container "$SMOKE")
    run exit_code "$SMOKE"
    [ "$output" = 0 ] || fail "exit code $output after $took ms"
    [ "$took" -lt $((STOP_GRACE * 1000)) ] || fail "stop took $took ms"
    run container_logs "$SMOKE"
    [[ "$output" != *"Shutdown timeout"* ]] || fail "the supervisor's deadline was needed: $output"
}

@test "an arbitrary UID in group 0 starts and serves" {
    local name
    name=$(cname uid)
    start_proxy "$name" --user 1234567:0
    wait_ready "$name"
    run container_logs "$name"
    [[ "$output" == *"CephaloProxy entrypoint starting (UID: 1234567, GID: 0)"* ]] || fail "$output"
    run http_code proxy_curl "$name" "$(origin_url /hello/uid)"
    [ "$output" = 200 ] || fail "proxy answered $output"
}
