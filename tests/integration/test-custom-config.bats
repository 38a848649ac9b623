#!/usr/bin/env bats
# A squid.conf mounted at /etc/squid/squid.conf is used as it is; an invalid
# or unreadable one stops the container with exit code 1 and Squid's own words.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

# mounted_conf NAME: write stdin (extra directives) into a custom squid.conf on
# port 3129 and print its path.
mounted_conf() {
    local path=$BATS_TEST_TMPDIR/$1/squid.conf
    custom_squid_conf 3129 | write_file "$path" 0644
    echo "$path"
}

@test "a mounted squid.conf is used as is (its port, its directives)" {
    local name conf port
    # `via off`: Squid adds no Via header, which the default config would.
    conf=$(echo 'via off' | mounted_conf custom)
    name=$(cname custom)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro" -p 127.0.0.1::3129
    wait_ready "$name"
    port=$(host_port "$name" 3129)
    run curl -sS --max-time 10 --proxy "http://127.0.0.1:$port" "$(origin_url /hello/custom)"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"path=/hello/custom"* ]] || fail "$output"
    [[ "$output" == *$'via=\n'* || "$output" == *"via=" ]] || fail "Via header sent despite via off: $output"
    # Nothing listens on the default port.
    run proxy_curl "$name" "$(origin_url /hello/default-port)"
    [ "$status" -ne 0 ] || fail "port 3128 answered: $output"
    run health_curl "$name" /status
    [[ "$output" == *'"config": "/etc/squid/squid.conf"'* ]] || fail "$output"
    [[ "$output" == *'"squid_port": 3129'* ]] || fail "$output"
}

@test "an invalid mounted squid.conf: exit 1 with Squid's parse error" {
    local name conf
    conf=$(echo 'http_access allow undefined_acl_name' | mounted_conf invalid)
    name=$(cname invalid)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ]
    run container_logs "$name"
    [[ "$output" == *"[ERROR] Squid configuration /etc/squid/squid.conf is invalid: "* ]] || fail "$output"
    [[ "$output" == *"undefined_acl_name"* ]] || fail "Squid's words are missing: $output"
    [[ "$output" != *"Squid started with PID"* ]] || fail "Squid was started: $output"
    [ "$(printf '%s\n' "$output" | grep -c '\[ERROR\]')" -eq 1 ] || fail "not exactly one [ERROR] line: $output"
}

@test "an unknown directive is rejected the same way" {
    local name conf
    conf=$(echo 'no_such_directive_at_all on' | mounted_conf unknown)
    name=$(cname unknown)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ]
    run container_logs "$name"
    [[ "$output" == *"[ERROR] Squid configuration /etc/squid/squid.conf is invalid: "*"no_such_directive_at_all"* ]] \
        || fail "$output"
}

@test "an unreadable mounted squid.conf: exit 1 naming the file and the fix" {
    local name conf
    conf=$(mounted_conf unreadable </dev/null)
    chmod 0600 "$conf"  # root's only; the container runs as UID 1000
    name=$(cname unreadable)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ]
    run container_logs "$name"
    [[ "$output" == *"[ERROR] Cannot read Squid configuration /etc/squid/squid.conf: Permission denied"* ]] \
        || fail "$output"
}

@test "validate checks a mounted squid.conf without starting anything" {
    local conf
    conf=$(mounted_conf valid </dev/null)
    run run_image -v "$conf:/etc/squid/squid.conf:ro" -- validate
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"Configuration validation passed"* ]] || fail "$output"
    [[ "$output" != *"Starting Squid"* ]] || fail "$output"
    conf=$(echo 'http_access allow undefined_acl_name' | mounted_conf invalid-validate)
    run run_image -v "$conf:/etc/squid/squid.conf:ro" -- validate
    [ "$status" -eq 1 ] || fail "status $status: $output"
    [[ "$output" == *"is invalid: "*"undefined_acl_name"* ]] || fail "$output"
}
