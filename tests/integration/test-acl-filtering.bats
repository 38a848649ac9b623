#!/usr/bin/env bats
# Site policy dropped into /etc/squid/conf.d/ is applied by the default
# configuration before its allow rules: a mounted blocklist denies its domains
# (403, without contacting them) and leaves every other domain alone.

load helpers

setup_file() {
    suite_setup_file --origin
    export CONF_D=$BATS_FILE_TMPDIR/conf.d
    mkdir -p "$CONF_D"
    chmod 0755 "$CONF_D"
    write_file "$CONF_D/blocklist.conf" 0644 <<'CONF'
# Domains nobody may reach through this proxy (a dot covers subdomains too).
acl blocklist dstdomain .blocked.test
http_access deny blocklist
CONF
    # A file that is not *.conf is not read (if it were, Squid would refuse it).
    echo 'this is not squid syntax' | write_file "$CONF_D/README" 0644
    export BLOCKING_PROXY="$CP_RUN_ID-blocking"
    start_proxy "$BLOCKING_PROXY" -v "$CONF_D:/etc/squid/conf.d:ro" || return 1
    wait_ready "$BLOCKING_PROXY"
}
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

blocked_url() { echo "http://${1:-blocked.test}:$ORIGIN_HTTP_PORT/hello/${2:-acl}"; }

@test "a domain on the mounted blocklist is denied with 403" {
    run proxy_curl "$BLOCKING_PROXY" -i "$(blocked_url blocked.test acl-denied)"
    [[ "${lines[0]}" == "HTTP/1.1 403"* ]] || fail "$output"
    [[ "$output" == *"X-Squid-Error: ERR_ACCESS_DENIED"* ]] || fail "$output"
    # Squid decided; the origin never saw the request.
    if grep -q 'acl-denied' "$ORIGIN_LOG"; then fail "the origin was contacted"; fi
}

@test "a subdomain of a blocked domain is denied too" {
    run http_code proxy_curl "$BLOCKING_PROXY" "$(blocked_url www.blocked.test acl-sub)"
    [ "$output" = 403 ]
}

@test "a domain not on the blocklist is served (200)" {
    run http_code proxy_curl "$BLOCKING_PROXY" "$(origin_url /hello/acl-allowed)"
    [ "$output" = 200 ]
    wait_origin_request 'GET /hello/acl-allowed '
}

@test "without the blocklist the same domain is served: the 403 is the ACL's doing" {
    local name
    name=$(cname no-blocklist)
    start_proxy "$name"
    wait_ready "$name"
    run http_code proxy_curl "$name" "$(blocked_url blocked.test acl-baseline)"
    [ "$output" = 200 ]
}

@test "an invalid file in conf.d stops the start-up with Squid's message" {
    local name dir=$BATS_TEST_TMPDIR/conf.d
    mkdir -p "$dir"
    chmod 0755 "$dir"
    echo 'http_access deny no_such_acl' | write_file "$dir/broken.conf" 0644
    name=$(cname broken)
    start_proxy "$name" -v "$dir:/etc/squid/conf.d:ro"
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ]
    run container_logs "$name"
    [[ "$output" == *"[ERROR] Squid configuration "*" is invalid: "*"no_such_acl"* ]] || fail "$output"
}
