#!/usr/bin/env bats
# ssl-bump: with a CA certificate and key mounted in /etc/squid/tls, the proxy
# decrypts HTTPS and re-signs each site's certificate with that CA; without a
# usable key it refuses to start, with one clear line.

load helpers

setup_file() { suite_setup_file --tls-origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

# The mounted squid.conf of an ssl-bump deployment (docs/configuration.md):
# tls-cert points at the merged file the supervisor writes, certgen at the
# database it initialises. Squid verifies the origin with the test origin CA.
bump_conf() {
    custom_squid_conf "3128 ssl-bump tls-cert=/var/lib/squid/squid-ca.pem generate-host-certificates=on dynamic_cert_mem_cache_size=4MB" <<'CONF'
sslcrtd_program /usr/lib/squid/security_file_certgen -s /var/lib/squid/ssl_db -M 4MB
sslcrtd_children 3 startup=1 idle=1
tls_outgoing_options cafile=/etc/squid/tls/origin-ca.crt
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
acl SSL_ports port 443 1025-65535
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
CONF
}

# start_bumping_proxy NAME TLS_DIR: a proxy with the bump config and TLS_DIR
# mounted at /etc/squid/tls.
start_bumping_proxy() {
    local conf=$BATS_TEST_TMPDIR/squid.conf
    bump_conf | write_file "$conf" 0644
    start_proxy "$1" -v "$conf:/etc/squid/squid.conf:ro" -v "$2:/etc/squid/tls:ro"
}

https_origin() { echo "https://origin.test:$ORIGIN_HTTPS_PORT${1:-/hello}"; }

@test "a bumped HTTPS request succeeds with a certificate issued by the mounted CA" {
    local name
    name=$(cname bump)
    start_bumping_proxy "$name" "$PKI_DIR/tls"
    wait_ready "$name"
    run proxy_curl "$name" -v --cacert "$PKI_DIR/tls/tls.crt" "$(https_origin /hello/bumped)"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"scheme=https"* && "$output" == *"path=/hello/bumped"* ]] || fail "$output"
    # The certificate curl saw: issued by the bump CA, for the origin's name.
    [[ "$output" =~ issuer:\ CN\ ?=\ ?CephaloProxy\ test\ bump\ CA ]] || fail "issuer: $output"
    [[ "$output" =~ subject:\ CN\ ?=\ ?origin.test ]] || fail "subject: $output"
    # Squid saw the decrypted request (a bumped GET, not only a CONNECT tunnel).
    wait_log "$name" "GET https://origin.test:$ORIGIN_HTTPS_PORT/hello/bumped" 5
}

@test "the origin's own CA does not validate the bumped connection (it is really re-signed)" {
    local name
    name=$(cname bump-origin-ca)
    start_bumping_proxy "$name" "$PKI_DIR/tls"
    wait_ready "$name"
    run proxy_curl "$name" --cacert "$PKI_DIR/origin-ca.crt" "$(https_origin /hello/origin-ca)"
    [ "$status" -eq 60 ] || fail "curl status $status (60 = certificate problem expected): $output"
}

@test "the supervisor merges the CA into squid-ca.pem (mode 0600) and never logs the key" {
    local name
    name=$(cname merged)
    start_bumping_proxy "$name" "$PKI_DIR/tls"
    wait_ready "$name"
    run engine exec "$name" /usr/bin/python3 -I -S -c '
import os, stat
path = "/var/lib/squid/squid-ca.pem"
print(oct(stat.S_IMODE(os.stat(path).st_mode)))
text = open(path).read()
print("cert" if "BEGIN CERTIFICATE" in text else "no-cert", "key" if "PRIVATE KEY" in text else "no-key")
print("db" if os.path.isdir("/var/lib/squid/ssl_db") else "no-db")
'
    [ "$status" -eq 0 ] || fail "$output"
    [ "${lines[0]}" = 0o600 ] || fail "mode ${lines[0]}"
    [ "${lines[1]}" = "cert key" ] || fail "${lines[1]}"
    [ "${lines[2]}" = db ] || fail "${lines[2]}"
    run container_logs "$name"
    [[ "$output" != *"PRIVATE KEY"* ]] || fail "the key was logged"
    [[ "$output" != *"$(sed -n 2p "$PKI_DIR/tls/tls.key")"* ]] || fail "key material was logged"
}

@test "a missing CA key: exit 1 with one clear [ERROR] line" {
    local name dir=$BATS_TEST_TMPDIR/tls
    mkdir -p "$dir"
    chmod 0755 "$dir"
    cp "$PKI_DIR/tls/tls.crt" "$PKI_DIR/tls/origin-ca.crt" "$dir/"
    chmod 0644 "$dir"/*
    name=$(cname no-key)
    start_bumping_proxy "$name" "$dir"
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ]
    run container_logs "$name"
    [ "$(printf '%s\n' "$output" | grep -c '\[ERROR\]')" -eq 1 ] || fail "not exactly one [ERROR] line: $output"
    [[ "$output" == *"[ERROR] ssl-bump is configured but the CA private key /etc/squid/tls/tls.key is missing"* ]] \
        || fail "$output"
    [[ "$output" != *"Squid started with PID"* ]] || fail "$output"
}

@test "a CA key that does not match the certificate: exit 1 naming both files" {
    local name dir=$BATS_TEST_TMPDIR/tls
    mkdir -p "$dir"
    chmod 0755 "$dir"
    cp "$PKI_DIR/tls/tls.crt" "$PKI_DIR/tls/origin-ca.crt" "$dir/"
    cp "$PKI_DIR/origin.key" "$dir/tls.key"  # a valid key, but another one
    chmod 0644 "$dir"/*
    name=$(cname mismatch)
    start_bumping_proxy "$name" "$dir"
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ]
    run container_logs "$name"
    [[ "$output" == *"[ERROR] The CA certificate /etc/squid/tls/tls.crt and private key /etc/squid/tls/tls.key cannot be used together"* ]] \
        || fail "$output"
}
