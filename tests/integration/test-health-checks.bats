#!/usr/bin/env bats
# The health server on port 8080: /health, /ready, /metrics, /status; 404 for
# other paths, 405 for other methods; /ready turns 503 when the proxy is being
# taken out of service; and the image's HEALTHCHECK reports healthy.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

# One shared proxy for the read-only probes of this file would be faster, but a
# container per test keeps every test independent; each costs about a second.
ready_proxy() {
    PROXY=$(cname "$1")
    shift
    start_proxy "$PROXY" "$@"
    wait_ready "$PROXY"
}

@test "/health answers 200 OK" {
    ready_proxy health
    run health_curl "$PROXY" /health -i
    [[ "${lines[0]}" == "HTTP/1.1 200"* ]] || fail "$output"
    [[ "$output" == *"Cache-Control: no-store"* ]] || fail "$output"
}

@test "/ready answers 200 when Squid accepts connections" {
    ready_proxy ready
    run http_code health_curl "$PROXY" /ready
    [ "$output" = 200 ]
    run http_code health_curl "$PROXY" /ready -I
    [ "$output" = 200 ]
}

@test "/metrics is Prometheus text with the state, readiness and Squid's counters" {
    ready_proxy metrics
    # One request through the proxy, so Squid's counters have something to count.
    run http_code proxy_curl "$PROXY" "$(origin_url /hello/metrics)"
    [ "$output" = 200 ]
    run health_curl "$PROXY" /metrics -i
    [[ "${lines[0]}" == "HTTP/1.1 200"* ]] || fail "$output"
    [[ "$output" == *"Content-Type: text/plain"* ]] || fail "$output"
    [[ "$output" == *'cephaloproxy_state{state="RUNNING"} 1'* ]] || fail "$output"
    [[ "$output" == *"cephaloproxy_ready 1"* ]] || fail "$output"
    [[ "$output" == *"# TYPE "* ]] || fail "$output"
    # Every sample line is NAME{LABELS} VALUE: nothing a scraper would reject.
    local bad samples
    samples=$(printf '%s\n' "$output" | tr -d '\r' | sed '1,/^$/d' | grep -v -e '^#' -e '^$')
    [ -n "$samples" ] || fail "no samples: $output"
    bad=$(printf '%s\n' "$samples" \
        | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ([-+]?[0-9.eE+-]+|[-+]?Inf|NaN)$') || true
    [ -z "$bad" ] || fail "malformed metric lines:" "$bad"
}

@test "/status is JSON naming the state, the PIDs and the configuration" {
    ready_proxy status
    run health_curl "$PROXY" /status
    [ "$status" -eq 0 ]
    run "$ORIGIN_PYTHON" -c '
import json, sys
doc = json.loads(sys.argv[1])
assert doc["state"] == "RUNNING", doc
assert doc["ready"] is True, doc
assert doc["supervisor_pid"] == 1, doc
assert isinstance(doc["squid_pid"], int) and doc["squid_pid"] > 1, doc
assert doc["squid_port"] == 3128, doc
assert doc["config"], doc
print("ok")
' "$output"
    [ "$output" = ok ] || fail "$output"
}

@test "an unknown path answers 404" {
    ready_proxy notfound
    run http_code health_curl "$PROXY" /no-such-endpoint
    [ "$output" = 404 ]
    run http_code health_curl "$PROXY" /
    [ "$output" = 404 ]
}

@test "a method other than GET and HEAD answers 405" {
    ready_proxy method
    local method
    for method in POST PUT DELETE; do
        run http_code health_curl "$PROXY" /health -X "$method"
        [ "$output" = 405 ] || fail "$method /health: $output"
    done
    run health_curl "$PROXY" /ready -X POST -i
    [[ "$output" == *"Allow: GET, HEAD"* ]] || fail "no Allow header: $output"
}

@test "during a readiness drain /ready answers 503 while the proxy still serves" {
    ready_proxy drain -e READINESS_DRAIN=4
    local stopper=$BATS_TEST_TMPDIR/stop.ms
    ( stop_container "$PROXY" >"$stopper" ) 3>&- &
    local deadline=$(( $(now_ms) + 4000 )) code=
    until [ "$code" = 503 ] || [ "$(now_ms)" -gt "$deadline" ]; do
        code=$(http_code health_curl "$PROXY" /ready) || true
        [ "$code" = 503 ] || sleep 0.05
    done
    [ "$code" = 503 ] || fail "/ready never answered 503 during the drain (last: $code)"
    run http_code health_curl "$PROXY" /health
    [ "$output" = 200 ] || fail "/health during the drain: $output"
    run http_code proxy_curl "$PROXY" "$(origin_url /hello/during-drain)"
    [ "$output" = 200 ] || fail "the proxy stopped serving during the drain: $output"
    wait_exited "$PROXY" 20
    [ "$(exit_code "$PROXY")" = 0 ]
    run container_logs "$PROXY"
    [[ "$output" == *"Readiness set to 503; Squid keeps serving for 4s (READINESS_DRAIN)"* ]] || fail "$output"
}

@test "the image declares a HEALTHCHECK running cephaloinit check" {
    run engine image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE_NAME"
    if [ "$output" = null ] || [ -z "$output" ]; then
        # podman keeps it at the top level of the image's inspect document.
        run engine image inspect --format '{{json .HealthCheck}}' "$IMAGE_NAME"
    fi
    [[ "$output" == *'cephaloinit"'*'"check"'* ]] \
        || fail "no HEALTHCHECK (podman build without --format docker drops it): $output"
}

@test "the HEALTHCHECK reports healthy on a running proxy" {
    PROXY=$(cname healthcheck)
    if [ "$ENGINE" = podman ]; then
        start_proxy "$PROXY" --keep-healthcheck
        wait_ready "$PROXY"
        # Without systemd podman runs no timer; it runs the check on demand.
        run engine healthcheck run "$PROXY"
        [ "$status" -eq 0 ] || fail "healthcheck run: $output"
        run engine inspect --format '{{.State.Health.Status}}' "$PROXY"
        [ "$output" = healthy ] || fail "$output"
    else
        # The image checks every 30 s; a second here, same command.
        start_proxy "$PROXY" --keep-healthcheck --health-interval 1s
        wait_ready "$PROXY"
        local deadline=$(( $(now_ms) + 20000 ))
        until [ "$(engine inspect --format '{{.State.Health.Status}}' "$PROXY")" = healthy ]; do
            [ "$(now_ms)" -lt "$deadline" ] || fail "not healthy within 20 s"
            sleep 0.2
        done
    fi
}

@test "during a drain the HEALTHCHECK stays healthy, a check of /ready fails" {
    # Liveness must not fail while the proxy shuts down gracefully (an
    # orchestrator would kill it); readiness must (traffic goes elsewhere).
    PROXY=$(cname drain-check)
    start_proxy "$PROXY" -e READINESS_DRAIN=3
    wait_ready "$PROXY"
    run engine exec "$PROXY" /usr/bin/python3 -I -S -m cephaloinit check --url http://127.0.0.1:8080/ready
    [ "$status" -eq 0 ] || fail "check of /ready on a ready proxy: $output"
    engine kill -s TERM "$PROXY" >/dev/null
    wait_log "$PROXY" "Readiness set to 503" 5
    run engine exec "$PROXY" /usr/bin/python3 -I -S -m cephaloinit check
    [ "$status" -eq 0 ] || fail "the HEALTHCHECK failed during a graceful drain: $output"
    run engine exec "$PROXY" /usr/bin/python3 -I -S -m cephaloinit check --url http://127.0.0.1:8080/ready
    [ "$status" -ne 0 ] || fail "check of /ready succeeded during the drain"
    [[ "$output" == *"HTTP 503"* ]] || fail "$output"
}

# /ready reads Squid's listening socket from /proc: a connection closed before a
# request would be logged by Squid as an error in its access log.
@test "/ready probes leave no error lines in Squid's access log" {
    ready_proxy ready-quiet
    local i
    for i in 1 2 3; do
        health_curl "$PROXY" /ready -o /dev/null
    done
    run container_logs "$PROXY"
    [[ "$output" != *"error:transaction-end-before-headers"* ]] || fail "$output"
}
