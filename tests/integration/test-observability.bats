#!/usr/bin/env bats
# What an operator's tools read from the image: with LOG_FORMAT=json every line
# of a run is one JSON object; /metrics serves every metric the Grafana
# dashboard and the alert rules in deploy/monitoring/ query; /status and
# `cephaloinit status` name the state, Squid's version, PIDs, config and ports.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

@test "LOG_FORMAT=json: every line of a start, requests, a reload and a stop is one JSON object" {
    local proxy
    proxy=$(cname json)
    start_proxy "$proxy" -e LOG_FORMAT=json
    wait_ready "$proxy"
    run http_code proxy_curl "$proxy" "$(origin_url /hello/json)"
    [ "$output" = 200 ] || fail "$output"
    # A name nobody resolves: Squid answers with an error page, and may log about it.
    run http_code proxy_curl "$proxy" http://nowhere.invalid/
    [ "$output" = 503 ] || fail "$output"
    engine kill -s HUP "$proxy" >/dev/null
    wait_log "$proxy" "Squid reloaded its configuration"
    run http_code proxy_curl "$proxy" "$(origin_url /hello/after-reload)"
    [ "$output" = 200 ] || fail "$output"
    wait_log "$proxy" "/hello/after-reload"
    stop_container "$proxy" >/dev/null
    [ "$(exit_code "$proxy")" = 0 ]

    container_logs "$proxy" >"$BATS_TEST_TMPDIR/log"
    run "$ORIGIN_PYTHON" - "$BATS_TEST_TMPDIR/log" "$(origin_url /hello/json)" <<'EOF'
import json, sys
path, url = sys.argv[1], sys.argv[2]
objects = []
with open(path, encoding="utf-8") as log:
    for number, line in enumerate(log, 1):
        try:
            parsed = json.loads(line)
        except ValueError:
            sys.exit(f"line {number} is not JSON: {line!r}")
        if not isinstance(parsed, dict) or not {"time", "level"} <= set(parsed):
            sys.exit(f"line {number} is not a log object: {line!r}")
        objects.append(parsed)
access = [o for o in objects if o.get("url") == url]
assert len(access) == 1 and access[0]["status"] == 200 and access[0]["method"] == "GET", access
assert isinstance(access[0]["bytes"], int) and isinstance(access[0]["duration_ms"], int), access
squid = [o for o in objects if o.get("source") == "squid" and "message" in o]
assert any(o["message"].startswith("Starting Squid Cache version") for o in squid)
ours = [o["message"] for o in objects if "source" not in o]
assert "Container ready, entering monitoring loop" in ours and "Shutdown complete" in ours, ours
print(len(objects))
EOF
    [ "$status" -eq 0 ] || fail "$output"
    [ "$output" -gt 30 ] || fail "only $output lines"
}

@test "text mode: Squid's access lines keep Squid's own format" {
    local proxy
    proxy=$(cname text)
    start_proxy "$proxy"
    wait_ready "$proxy"
    run http_code proxy_curl "$proxy" "$(origin_url /hello/text)"
    [ "$output" = 200 ]
    wait_log "$proxy" "/hello/text"
    local line
    line=$(container_logs "$proxy" | grep -F /hello/text)
    [[ "$line" =~ ^[0-9]+\.[0-9]{3}\ +[0-9]+\ [0-9.]+\ TCP_MISS/200\ [0-9]+\ GET\ http:// ]] || fail "$line"
}

@test "the dashboard and the alert rules query only metrics a running container serves" {
    local proxy version
    proxy=$(cname metrics)
    start_proxy "$proxy"
    wait_ready "$proxy"
    run http_code proxy_curl "$proxy" "$(origin_url /hello/metrics)"
    [ "$output" = 200 ]
    health_curl "$proxy" /metrics >"$BATS_TEST_TMPDIR/metrics"
    run "$ORIGIN_PYTHON" "$CP_TEST_DIR/promql_names.py" "$BATS_TEST_TMPDIR/metrics" \
        "$CP_REPO_DIR/deploy/monitoring/grafana-dashboard.json" \
        "$CP_REPO_DIR/deploy/monitoring/prometheus-rules.yaml"
    [ "$status" -eq 0 ] || fail "$output"
    # The check can fail: a query of a metric nobody serves is named.
    sed 's/cephaloproxy_squid_open_fds/cephaloproxy_squid_open_files/' \
        "$CP_REPO_DIR/deploy/monitoring/grafana-dashboard.json" >"$BATS_TEST_TMPDIR/broken.json"
    run "$ORIGIN_PYTHON" "$CP_TEST_DIR/promql_names.py" "$BATS_TEST_TMPDIR/metrics" "$BATS_TEST_TMPDIR/broken.json"
    [ "$status" -eq 1 ] && [[ "$output" == *"cephaloproxy_squid_open_files is not served"* ]] || fail "$output"
    # Squid's version, from squid -v at start-up, as the image's Squid reports it.
    version=$(engine exec "$proxy" /usr/sbin/squid -v | sed -n 's/^Squid Cache: Version //p')
    [ -n "$version" ]
    grep -q "^cephaloproxy_build_info{version=\"[^\"]*\",squid_version=\"$version\"} 1\$" "$BATS_TEST_TMPDIR/metrics" \
        || fail "$(grep build_info "$BATS_TEST_TMPDIR/metrics")"
    grep -q '^cephaloproxy_squid_max_fds 1024$' "$BATS_TEST_TMPDIR/metrics" || fail "$(grep fds "$BATS_TEST_TMPDIR/metrics")"
    grep -q '^cephaloproxy_squid_cachemgr_up 1$' "$BATS_TEST_TMPDIR/metrics"
}

@test "/status and cephaloinit status name the state, Squid's version, the PIDs, the config and the ports" {
    local proxy
    proxy=$(cname status)
    start_proxy "$proxy"
    wait_ready "$proxy"
    health_curl "$proxy" /status >"$BATS_TEST_TMPDIR/status.json"
    engine exec "$proxy" /usr/bin/python3 -I -S -m cephaloinit status >"$BATS_TEST_TMPDIR/cli.json"
    run "$ORIGIN_PYTHON" - "$BATS_TEST_TMPDIR/status.json" "$BATS_TEST_TMPDIR/cli.json" <<'EOF'
import json, re, sys
for path in sys.argv[1:]:
    with open(path) as file:
        status = json.load(file)
    assert status["state"] == "RUNNING" and status["ready"] is True, status
    assert isinstance(status["state_since"], float) and status["uptime_seconds"] >= 0, status
    assert re.fullmatch(r"\d+\.\d+\S*", status["squid_version"]), status
    assert status["supervisor_pid"] == 1 and status["squid_pid"] > 1 and status["health_pid"] > 1, status
    assert status["config"] == "/usr/share/cephaloproxy/squid.conf", status  # the image default
    assert status["ports"] == [3128] and status["squid_port"] == 3128, status
    assert status["health_restarts"] == 0 and status["squid_kid_restarts"] == 0, status
EOF
    [ "$status" -eq 0 ] || fail "$output"
}
