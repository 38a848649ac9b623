#!/usr/bin/env bats
# The hardened run a security-conscious operator uses: read-only root, tmpfs
# only where the image writes, every capability dropped, no new privileges, an
# arbitrary UID in group 0. The proxy must still start, serve and stop cleanly.

load helpers

setup_file() { suite_setup_file --tls-origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

HARDENED+=(--user 4242:0)

@test "read-only root, no capabilities, no new privileges, UID 4242: starts, serves, stops with 0" {
    local name
    name=$(cname hardened)
    start_proxy "$name" "${HARDENED[@]}"
    wait_ready "$name"
    run http_code proxy_curl "$name" "$(origin_url /hello/hardened)"
    [ "$output" = 200 ]
    run http_code health_curl "$name" /health
    [ "$output" = 200 ]
    run engine inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name"
    [ "$output" = true ]
    # The process really runs without capabilities and cannot gain any.
    run engine exec "$name" /usr/bin/python3 -I -S -c '
for line in open("/proc/1/status"):
    if line.startswith(("CapEff", "CapPrm", "NoNewPrivs", "Uid")):
        print(" ".join(line.split()))
'
    [[ "$output" == *"CapEff: 0000000000000000"* ]] || fail "$output"
    [[ "$output" == *"CapPrm: 0000000000000000"* ]] || fail "$output"
    [[ "$output" == *"NoNewPrivs: 1"* ]] || fail "$output"
    [[ "$output" == *"Uid: 4242 4242 4242 4242"* ]] || fail "$output"
    local took
    took=$(stop_container "$name")
    [ "$(exit_code "$name")" = 0 ]
    [ "$took" -lt 6000 ] || fail "stop took $took ms"
}

@test "the hardened run also serves ssl-bump (certificate database on tmpfs)" {
    local name conf=$BATS_TEST_TMPDIR/squid.conf
    custom_squid_conf "3128 ssl-bump tls-cert=/var/lib/squid/squid-ca.pem generate-host-certificates=on" <<'CONF' | write_file "$conf" 0644
sslcrtd_program /usr/lib/squid/security_file_certgen -s /var/lib/squid/ssl_db -M 4MB
sslcrtd_children 3 startup=1 idle=1
tls_outgoing_options cafile=/etc/squid/tls/origin-ca.crt
ssl_bump bump all
CONF
    name=$(cname hardened-bump)
    start_proxy "$name" "${HARDENED[@]}" -v "$conf:/etc/squid/squid.conf:ro" -v "$PKI_DIR/tls:/etc/squid/tls:ro"
    wait_ready "$name"
    run proxy_curl "$name" --cacert "$PKI_DIR/tls/tls.crt" "https://origin.test:$ORIGIN_HTTPS_PORT/hello/hardened-bump"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"scheme=https"* ]] || fail "$output"
}

@test "a read-only root without writable mounts fails with one clear line" {
    local name
    name=$(cname readonly-bare)
    start_proxy "$name" --read-only --user 4242:0
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ]
    run container_logs "$name"
    [ "$(printf '%s\n' "$output" | grep -c '\[ERROR\]')" -eq 1 ] || fail "$output"
    [[ "$output" == *"[ERROR] "*"/var/run/squid"*"Read-only file system"* ]] || fail "$output"
}
