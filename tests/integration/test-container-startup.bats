#!/usr/bin/env bats
# A default start: the supervisor logs its contract's lines in order, the health
# server answers, and a request through the proxy reaches a real origin.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

@test "a default start logs the start-up contract's lines in order" {
    local name
    name=$(cname default)
    start_proxy "$name"
    wait_ready "$name"
    assert_logged_in_order "$name" \
        "${STARTUP_LINES[@]}"
    run container_logs "$name"
    [[ "$output" != *"[ERROR]"* ]] || fail "an [ERROR] line on a clean start"
}

@test "after start-up /health and /ready answer 200" {
    local name
    name=$(cname probes)
    start_proxy "$name"
    wait_ready "$name"
    run http_code health_curl "$name" /health
    [ "$output" = 200 ]
    run http_code health_curl "$name" /ready
    [ "$output" = 200 ]
}

@test "a request through the proxy reaches the origin and comes back" {
    local name token
    name=$(cname proxy)
    start_proxy "$name"
    wait_ready "$name"
    token="startup-$RANDOM$RANDOM"
    run proxy_curl "$name" -i "$(origin_url "/hello/$token")"
    [ "$status" -eq 0 ] || fail "curl failed: $output"
    [[ "${lines[0]}" == "HTTP/1.1 200"* ]] || fail "status line: ${lines[0]}"
    [[ "$output" == *"path=/hello/$token"* ]] || fail "origin body missing: $output"
    # Squid, not a direct connection, delivered it: it adds its Via header.
    [[ "$output" == *"via=1.1 "*"(squid"* ]] || fail "no Via from Squid: $output"
    wait_origin_request "GET /hello/$token host=origin.test:$ORIGIN_HTTP_PORT"
    # ... and Squid's own access log, relayed by the supervisor, has it.
    wait_log "$name" "GET http://origin.test:$ORIGIN_HTTP_PORT/hello/$token" 5
}
