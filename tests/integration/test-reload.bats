#!/usr/bin/env bats
# SIGHUP reloads: a valid new configuration takes effect without a restart; an
# invalid one is refused before Squid sees it, and the proxy keeps serving on
# the configuration it had.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

BLOCKLIST='acl blocklist dstdomain .blocked.test
http_access deny blocklist'

# set_conf PATH [EXTRA DIRECTIVES]: rewrite the mounted file in place (same
# inode), which is what a bind-mounted single file needs to show the change.
set_conf() {
    printf '%s\n' "${2:-}" | custom_squid_conf >"$1"
}

blocked_code() {
    http_code proxy_curl "$1" "http://blocked.test:$ORIGIN_HTTP_PORT/hello/${2:-reload}"
}

# reload NAME EXPECTED_LINE: send SIGHUP and wait for the supervisor's verdict.
# Each reload is counted, so a second one is not mistaken for the first.
reload() {
    local name=$1 line=$2 before
    before=$(container_logs "$name" | grep -cF -- "$line" || true)
    engine kill -s HUP "$name" >/dev/null
    local deadline=$(( $(now_ms) + 20000 ))
    until [ "$(container_logs "$name" | grep -cF -- "$line")" -gt "$before" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || { fail "no '$line' after SIGHUP"; return 1; }
        sleep 0.1
    done
}

@test "SIGHUP with a valid new configuration applies it without a restart" {
    local name conf=$BATS_TEST_TMPDIR/squid.conf squid_pid
    set_conf "$conf"
    chmod 0644 "$conf"
    name=$(cname valid)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_ready "$name"
    run blocked_code "$name" before
    [ "$output" = 200 ] || fail "before the reload: $output"
    squid_pid=$(health_curl "$name" /status | sed -n 's/.*"squid_pid": \([0-9]*\).*/\1/p')

    set_conf "$conf" "$BLOCKLIST"
    reload "$name" "Squid reloaded its configuration"
    wait_ready "$name" 10
    run blocked_code "$name" after
    [ "$output" = 403 ] || fail "after the reload: $output"
    run http_code proxy_curl "$name" "$(origin_url /hello/after-reload)"
    [ "$output" = 200 ]
    # The same Squid, reconfigured: not a restart.
    run health_curl "$name" /status
    [[ "$output" == *"\"squid_pid\": $squid_pid,"* ]] || fail "Squid PID changed from $squid_pid: $output"
    run container_logs "$name"
    [[ "$output" == *"Received signal SIGHUP, validating the configuration before reloading Squid"* ]] || fail "$output"
}

@test "SIGHUP with an invalid configuration is rejected; the old one keeps serving" {
    local name conf=$BATS_TEST_TMPDIR/squid.conf
    set_conf "$conf" "$BLOCKLIST"
    chmod 0644 "$conf"
    name=$(cname invalid)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_ready "$name"
    run blocked_code "$name" before
    [ "$output" = 403 ]

    # Without the blocklist, and broken: were it applied, blocked.test would pass.
    set_conf "$conf" 'http_access allow undefined_acl_after_reload'
    reload "$name" "Reload rejected, Squid keeps running on its current configuration: "
    run container_logs "$name"
    [[ "$output" == *"[ERROR] Reload rejected, Squid keeps running on its current configuration: "*"undefined_acl_after_reload"* ]] \
        || fail "$output"
    [ "$(container_status "$name")" = running ]
    wait_ready "$name" 10
    run blocked_code "$name" still-blocked
    [ "$output" = 403 ] || fail "the old configuration is gone: $output"
    run http_code proxy_curl "$name" "$(origin_url /hello/still-serving)"
    [ "$output" = 200 ]

    # Fixed, the next SIGHUP applies it: a rejected reload leaves nothing stuck.
    set_conf "$conf"
    reload "$name" "Squid reloaded its configuration"
    wait_ready "$name" 10
    run blocked_code "$name" unblocked
    [ "$output" = 200 ] || fail "the fixed configuration was not applied: $output"
}

@test "SIGHUP on the default configuration reloads it" {
    local name
    name=$(cname default)
    start_proxy "$name"
    wait_ready "$name"
    reload "$name" "Squid reloaded its configuration"
    wait_ready "$name" 10
    run http_code proxy_curl "$name" "$(origin_url /hello/default-reload)"
    [ "$output" = 200 ]
}
