#!/usr/bin/env bats
# A stop is graceful and prompt: an idle proxy exits 0 within seconds (not at
# the engine's SIGKILL), a download in flight is allowed to finish, and a stop
# during start-up ends the start-up and exits 0.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

# An idle stop: Squid needs ~1.5 s after its SIGINT; the rest is the engine.
IDLE_STOP_MAX_MS=${IDLE_STOP_MAX_MS:-6000}

@test "stop of an idle proxy returns within seconds with exit code 0" {
    local name took
    name=$(cname idle)
    start_proxy "$name"
    wait_ready "$name"
    took=$(stop_container "$name")
    [ "$took" -lt "$IDLE_STOP_MAX_MS" ] || fail "stop took ${took} ms"
    run exit_code "$name"
    [ "$output" = 0 ] || fail "exit code $output"
}

@test "a stop logs SIGTERM, Squid's own clean exit and Shutdown complete, in order" {
    local name
    name=$(cname logs)
    start_proxy "$name"
    wait_ready "$name"
    stop_container "$name" >/dev/null
    assert_logged_in_order "$name" \
        "Container ready, entering monitoring loop" \
        "[INFO] Received signal SIGTERM, initiating graceful shutdown..." \
        "Exiting normally" \
        "[INFO] Shutdown complete"
    run container_logs "$name"
    [[ "$output" != *"Shutdown timeout"* ]] || fail "the deadline was needed: $output"
    [[ "$output" != *"[ERROR]"* ]] || fail "$output"
}

@test "SIGINT and SIGQUIT stop the proxy like SIGTERM, exit code 0" {
    local signal name
    for signal in INT QUIT; do
        name=$(cname "$signal")
        start_proxy "$name"
        wait_ready "$name"
        engine kill -s "$signal" "$name" >/dev/null
        wait_exited "$name" 15
        [ "$(exit_code "$name")" = 0 ] || fail "SIG$signal: exit code $(exit_code "$name")"
        assert_logged_in_order "$name" "Received signal SIG$signal, initiating graceful shutdown..." \
            "Shutdown complete"
    done
}

@test "stop during a slow download lets the download finish, then exits 0" {
    local name dir took
    name=$(cname download)
    dir=$BATS_TEST_TMPDIR
    start_proxy "$name"
    wait_ready "$name"
    # 40 KiB over 4 s, through the proxy, in the background.
    (
        status=0
        proxy_curl "$name" -o "$dir/body" -w '%{http_code} %{size_download}' \
            "$(origin_url '/slow?seconds=4&chunks=40&id=shutdown')" >"$dir/result" 2>"$dir/curl.err" || status=$?
        echo "$status" >"$dir/curl.status"
    ) 3>&- &
    wait_origin_request 'GET /slow\?seconds=4&chunks=40&id=shutdown'
    took=$(stop_container "$name")
    local deadline=$(( $(now_ms) + 10000 ))
    until [ -s "$dir/curl.status" ] || [ "$(now_ms)" -gt "$deadline" ]; do sleep 0.1; done
    [ "$(cat "$dir/curl.status")" = 0 ] || fail "curl failed: $(cat "$dir/curl.err")"
    [ "$(cat "$dir/result")" = "200 40960" ] || fail "download: $(cat "$dir/result")"
    [ "$(exit_code "$name")" = 0 ]
    # The stop waited for the download (about 4 s), but not for the deadline.
    [ "$took" -ge 2000 ] || fail "stop returned after ${took} ms, before the download could end"
    [ "$took" -lt 20000 ] || fail "stop took ${took} ms"
    run container_logs "$name"
    [[ "$output" != *"Shutdown timeout"* ]] || fail "$output"
    # Squid's access log (query strings stripped) has the whole transfer.
    [[ "$output" =~ TCP_MISS/200\ [0-9]+\ GET\ http://origin.test:$ORIGIN_HTTP_PORT/slow ]] \
        || fail "no completed transfer in Squid's access log"
}

@test "stop during start-up (cache initialisation) exits 0 promptly" {
    local name dir took
    name=$(cname startup)
    dir=$BATS_TEST_TMPDIR/conf
    # 256 x 256 swap directories: `squid -z` takes seconds, a window in
    # VALIDATING that the test can hit without racing.
    echo 'cache_dir ufs /var/cache/squid 100 256 256' | custom_squid_conf | write_file "$dir/squid.conf" 0644
    start_proxy "$name" -v "$dir/squid.conf:/etc/squid/squid.conf:ro"
    wait_log "$name" "Initialising cache directories" 20
    took=$(stop_container "$name")
    [ "$took" -lt 5000 ] || fail "stop took ${took} ms"
    [ "$(exit_code "$name")" = 0 ] || fail "exit code $(exit_code "$name")"
    run container_logs "$name"
    [[ "$output" == *"Received signal SIGTERM, initiating graceful shutdown..."* ]] || fail "$output"
    [[ "$output" != *"Squid started with PID"* ]] || fail "start-up had finished; the test proves nothing: $output"
    [[ "$output" != *"Shutdown timeout"* ]] || fail "$output"
}
