#!/usr/bin/env bats
# The default configuration is a working forward proxy: it relays requests and
# answers faithfully, honours SQUID_PORT, and keeps its default safety rules
# (no CONNECT to non-TLS ports, no unsafe ports, no remote cache manager).

load helpers

setup_file() {
    suite_setup_file --origin
    # One proxy serves every test of this file: they only send requests.
    export SHARED_PROXY="$CP_RUN_ID-shared"
    start_proxy "$SHARED_PROXY" || return 1
    wait_ready "$SHARED_PROXY"
}
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

@test "GET through the proxy returns the origin's status, headers and body" {
    run proxy_curl "$SHARED_PROXY" -i "$(origin_url /hello/basic)"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "${lines[0]}" == "HTTP/1.1 200 OK"* ]] || fail "$output"
    [[ "$output" == *"Server: CephaloProxyTestOrigin/1"* ]] || fail "$output"
    [[ "$output" == *"path=/hello/basic"* ]] || fail "$output"
}

@test "the origin's 404 comes back as 404" {
    run http_code proxy_curl "$SHARED_PROXY" "$(origin_url /no-such-page)"
    [ "$output" = 404 ]
}

@test "HEAD through the proxy works" {
    run proxy_curl "$SHARED_PROXY" -I "$(origin_url /hello/head)"
    [[ "${lines[0]}" == "HTTP/1.1 200 OK"* ]] || fail "$output"
}

@test "a larger body arrives whole (200 KiB)" {
    run proxy_curl "$SHARED_PROXY" -o /dev/null -w '%{http_code} %{size_download}' \
        "$(origin_url '/slow?seconds=0.2&chunks=200')"
    [ "$output" = "200 204800" ] || fail "$output"
}

@test "concurrent requests are all served" {
    local i pids=() dir=$BATS_TEST_TMPDIR
    for i in 1 2 3 4 5 6 7 8; do
        proxy_curl "$SHARED_PROXY" -o /dev/null -w '%{http_code}' \
            "$(origin_url "/slow?seconds=1&chunks=4&n=$i")" >"$dir/$i" 2>&1 3>&- &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    for i in 1 2 3 4 5 6 7 8; do
        [ "$(cat "$dir/$i")" = 200 ] || fail "request $i: $(cat "$dir/$i")"
    done
}

@test "CONNECT to a port other than 443 is refused (403)" {
    run proxy_curl "$SHARED_PROXY" -p -o /dev/null -w '%{http_code}' "$(origin_url /hello/tunnel)"
    [[ "$output" == *403* ]] || fail "$output"
}

@test "a request to an unsafe port is refused (403)" {
    run http_code proxy_curl "$SHARED_PROXY" http://origin.test:25/
    [ "$output" = 403 ]
}

@test "the cache manager is not open to clients outside the container" {
    local port
    port=$(host_port "$SHARED_PROXY" 3128)
    run curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/squid-internal-mgr/info"
    [ "$output" = 403 ] || fail "cache manager answered $output"
}

@test "SQUID_PORT moves the proxy to another port" {
    local name port
    name=$(cname port)
    start_proxy "$name" -e SQUID_PORT=3300 -p 127.0.0.1::3300
    wait_ready "$name"
    port=$(host_port "$name" 3300)
    run curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --proxy "http://127.0.0.1:$port" \
        "$(origin_url /hello/port3300)"
    [ "$output" = 200 ] || fail "$output"
    run health_curl "$name" /status
    [[ "$output" == *'"squid_port": 3300'* ]] || fail "$output"
}
