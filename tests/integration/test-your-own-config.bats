#!/usr/bin/env bats
# Your own squid.conf works unchanged: Debian's stock file, a minimal one, one
# that names its own log files or pid file, and each file in examples/, mounted
# exactly as a user would, become ready, behave as the file says, and stop
# with exit code 0 in about Squid's own floor; a typo stops the start-up with
# Squid's words.

load helpers

setup_file() { suite_setup_file --tls-origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

EXAMPLES=$CP_REPO_DIR/examples
# Squid needs ~1.5 s after its second signal; the stop must stay near that,
# far from the 30 s shutdown_lifetime a config without one would otherwise wait.
STOP_MAX_MS=${IDLE_STOP_MAX_MS:-6000}

# stops_cleanly NAME: stop returns well within STOP_MAX_MS, exit code 0.
stops_cleanly() {
    local ms
    ms=$(stop_container "$1") || return 1
    [ "$(exit_code "$1")" = 0 ] || fail "$1 exited with $(exit_code "$1") after a stop"
    [ "$ms" -lt "$STOP_MAX_MS" ] || fail "$1 took ${ms} ms to stop (bound ${STOP_MAX_MS} ms)"
}

# wait_access NAME URL RESULT [SECONDS]: until Squid's access log, relayed into
# the container's log, has a line for URL with RESULT (e.g. TCP_HIT/200).
wait_access() {
    local name=$1 url=$2 result=$3 deadline=$(( $(now_ms) + ${4:-10} * 1000 ))
    until container_logs "$name" | grep -F -- " $url " | grep -Fq -- "$result"; do
        [ "$(now_ms)" -lt "$deadline" ] || {
            fail "no access log line '$result ... $url' from $name:" "$(container_logs "$name" | tail -n 20)"
            return 1
        }
        sleep 0.1
    done
}

# from_inside NAME URL: a proxied GET sent from inside the container, from
# 127.0.0.1 (the image has no curl; its Python has sockets). Prints the response.
from_inside() {
    engine exec "$1" /usr/bin/python3 -I -S -c '
import socket, sys
url = sys.argv[1]
host = url.split("/")[2]
with socket.create_connection(("127.0.0.1", 3128), timeout=10) as s:
    s.sendall(f"GET {url} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
print(data.decode("latin-1"))
' "$2"
}

# conf_file NAME < content: a squid.conf in the test's directory; prints its path.
conf_file() {
    local path=$BATS_TEST_TMPDIR/$1
    write_file "$path" 0644
    echo "$path"
}

# group0_dir NAME: a host directory the container's UID 1000 (GID 0) can write.
group0_dir() {
    local dir=$BATS_TEST_TMPDIR/$1
    mkdir -p "$dir"
    chgrp 0 "$dir"
    chmod 0770 "$dir"
    echo "$dir"
}

https_origin() { echo "https://${2:-origin.test}:$ORIGIN_HTTPS_PORT${1:-/hello}"; }

# --- configs users already have ---------------------------------------------------

@test "Debian's stock squid.conf, unchanged: ready, serves localhost, denies others, logs to the container's log" {
    [ -r /etc/squid/squid.conf ] || skip "no /etc/squid/squid.conf on this host (apt-get install squid-openssl)"
    local name url_local url_host
    name=$(cname stock)
    start_proxy "$name" -v /etc/squid/squid.conf:/etc/squid/squid.conf:ro
    wait_ready "$name"
    # Debian allows only localhost (its "http_access allow localnet" is commented
    # out): the host's request arrives from the network's gateway and is denied.
    url_host=$(origin_url /hello/stock-from-host)
    run http_code proxy_curl "$name" "$url_host"
    [ "$output" = 403 ] || fail "from the host: $output"
    wait_access "$name" "$url_host" TCP_DENIED/403
    url_local=$(origin_url /hello/stock-from-localhost)
    run from_inside "$name" "$url_local"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "${lines[0]}" == "HTTP/1.1 200"* ]] || fail "$output"
    [[ "$output" == *"path=/hello/stock-from-localhost"* ]] || fail "$output"
    wait_access "$name" "$url_local" TCP_MISS/200
    stops_cleanly "$name"
}

@test "a minimal squid.conf (port, allow localhost, deny all) becomes ready and logs its requests" {
    local name conf url
    conf=$(conf_file squid.conf <<'CONF'
http_port 3128
http_access allow localhost
http_access deny all
CONF
)
    name=$(cname minimal)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_ready "$name"
    url=$(origin_url /hello/minimal)
    run http_code proxy_curl "$name" "$url"
    [ "$output" = 403 ] || fail "the host is not localhost, a 403 was expected: $output"
    wait_access "$name" "$url" TCP_DENIED/403
    stops_cleanly "$name"
}

@test "a typo in squid.conf: exit 1 with Squid's parse error naming it" {
    local name conf
    conf=$(conf_file squid.conf <<'CONF'
http_port 3128
this_is_not_a_directive on
http_access allow localhost
http_access deny all
CONF
)
    name=$(cname typo)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_exited "$name" 20
    [ "$(exit_code "$name")" = 1 ] || fail "exit code $(exit_code "$name")"
    run container_logs "$name"
    [[ "$output" == *"[ERROR] Squid configuration /etc/squid/squid.conf is invalid: "*"this_is_not_a_directive"* ]] \
        || fail "$output"
    [[ "$output" != *"Squid started with PID"* ]] || fail "Squid was started: $output"
}

@test "a config that names its own log files keeps them: lines in the files, not in the container's log" {
    local name conf logs url
    logs=$(group0_dir logs)
    conf=$(custom_squid_conf 3128 </dev/null | sed \
        -e 's|^access_log .*|access_log stdio:/var/log/squid/access.log|' \
        -e 's|^cache_log .*|cache_log /var/log/squid/cache.log|' | conf_file squid.conf)
    name=$(cname own-logs)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro" -v "$logs:/var/log/squid"
    wait_ready "$name"
    url=$(origin_url /hello/own-logs)
    run http_code proxy_curl "$name" "$url"
    [ "$output" = 200 ] || fail "$output"
    local deadline=$(( $(now_ms) + 10000 ))
    until grep -Fq -- " $url " "$logs/access.log" 2>/dev/null; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "no line for $url in access.log: $(cat "$logs/access.log" 2>&1)"
        sleep 0.1
    done
    [ -s "$logs/cache.log" ] || fail "cache.log is missing or empty"
    run container_logs "$name"
    [[ "$output" != *" $url "* ]] || fail "the access log line also reached the container's log: $output"
    stops_cleanly "$name"
}

@test "pid_filename /var/run/squid/\${service_name}.pid: ready, serves, stops" {
    local name conf
    conf=$(custom_squid_conf 3128 </dev/null \
        | sed 's|^pid_filename .*|pid_filename /var/run/squid/${service_name}.pid|' | conf_file squid.conf)
    grep -Fqx 'pid_filename /var/run/squid/${service_name}.pid' "$conf" || fail "$(cat "$conf")"
    name=$(cname pid-macro)
    start_proxy "$name" -v "$conf:/etc/squid/squid.conf:ro"
    wait_ready "$name"
    run http_code proxy_curl "$name" "$(origin_url /hello/pid-macro)"
    [ "$output" = 200 ] || fail "$output"
    stops_cleanly "$name"
}

# --- examples/ ---------------------------------------------------------------------

@test "examples/allowlist.conf: a listed domain is served, any other gets 403 without being contacted" {
    local name allowed denied
    name=$(cname allowlist)
    # www.example.com (under .example.com in allowlist.acl) resolves to the test origin.
    start_proxy "$name" -v "$EXAMPLES/allowlist.conf:/etc/squid/squid.conf:ro" \
        -v "$EXAMPLES/allowlist.acl:/etc/squid/allowlist.acl:ro" \
        --add-host "www.example.com:$ORIGIN_HOST"
    wait_ready "$name"
    allowed="http://www.example.com:$ORIGIN_HTTP_PORT/hello/allowlisted"
    run proxy_curl "$name" -i "$allowed"
    [[ "${lines[0]}" == "HTTP/1.1 200"* ]] || fail "$output"
    [[ "$output" == *"host=www.example.com:$ORIGIN_HTTP_PORT"* ]] || fail "$output"
    denied="http://origin.test:$ORIGIN_HTTP_PORT/hello/not-listed"
    run proxy_curl "$name" -i "$denied"
    [[ "${lines[0]}" == "HTTP/1.1 403"* ]] || fail "$output"
    [[ "$output" == *"X-Squid-Error: ERR_ACCESS_DENIED"* ]] || fail "$output"
    if grep -q 'not-listed' "$ORIGIN_LOG"; then fail "the origin was contacted for a domain not listed"; fi
    stops_cleanly "$name"
}

@test "examples/basic-auth.conf: 407 without or with wrong credentials, 200 with an htpasswd user" {
    local name dir url
    dir=$BATS_TEST_TMPDIR/auth
    mkdir -p "$dir"
    # What the example's header tells users to run; basic_ncsa_auth reads $apr1$ hashes.
    printf 'alice:%s\n' "$(openssl passwd -apr1 's3cret words')" | write_file "$dir/htpasswd" 0640
    chgrp 0 "$dir/htpasswd"
    name=$(cname basic-auth)
    start_proxy "$name" -v "$EXAMPLES/basic-auth.conf:/etc/squid/squid.conf:ro" \
        -v "$dir/htpasswd:/etc/squid/htpasswd:ro"
    wait_ready "$name"
    url=$(origin_url /hello/authenticated)
    run proxy_curl "$name" -i "$(origin_url /hello/anonymous)"
    [[ "${lines[0]}" == "HTTP/1.1 407"* ]] || fail "$output"
    [[ "$output" == *'Proxy-Authenticate: Basic realm="CephaloProxy"'* ]] || fail "$output"
    run http_code proxy_curl "$name" --proxy-user 'alice:wrong' "$(origin_url /hello/wrong-password)"
    [ "$output" = 407 ] || fail "wrong password: $output"
    run proxy_curl "$name" --proxy-user 'alice:s3cret words' "$url"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"path=/hello/authenticated"* ]] || fail "$output"
    # The access log names the user.
    wait_access "$name" "$url" " alice "
    if grep -Eq 'anonymous|wrong-password' "$ORIGIN_LOG"; then fail "an unauthenticated request reached the origin"; fi
    stops_cleanly "$name"
}

@test "examples/parent-proxy.conf: requests go through the parent (its log, both Via entries), never direct" {
    local parent child parent_ip url
    parent=$(cname parent)
    start_proxy "$parent"
    wait_ready "$parent"
    parent_ip=$(engine inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$parent")
    [ -n "$parent_ip" ] || fail "no address for $parent"
    child=$(cname child)
    start_proxy "$child" -v "$EXAMPLES/parent-proxy.conf:/etc/squid/squid.conf:ro" \
        --add-host "upstream-proxy:$parent_ip"
    wait_ready "$child"
    url=$(origin_url /hello/through-parent)
    run proxy_curl "$child" "$url"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"path=/hello/through-parent"* ]] || fail "$output"
    # Two proxies added themselves to Via: the child, then the parent.
    local via
    via=$(printf '%s\n' "$output" | sed -n 's/^via=//p')
    [ "$(grep -o 'squid/' <<<"$via" | wc -l)" -eq 2 ] || fail "Via: $via"
    wait_access "$parent" "$url" TCP_MISS/200
    wait_access "$child" "$url" "_PARENT/$parent_ip "
    # With the parent gone, the child fails instead of going direct.
    stops_cleanly "$parent"
    run http_code proxy_curl "$child" "$(origin_url /hello/parent-down)"
    [ "$output" = 503 ] || fail "with the parent stopped: $output"
    if grep -q 'parent-down' "$ORIGIN_LOG"; then fail "the child went direct"; fi
    stops_cleanly "$child"
}

# start_bump_example NAME CA_MOUNT_POINT: examples/ssl-bump.conf unchanged, the
# test's CA at CA_MOUNT_POINT. Two test-only mounts: the origin's throw-away CA
# as the image's CA bundle (a real site's CA is in the bundle already), and a
# conf.d file allowing CONNECT to the origin's ephemeral port (the example
# allows 443 only).
start_bump_example() {
    local ports=$BATS_TEST_TMPDIR/test-ports.conf
    echo 'acl SSL_ports port 1025-65535' | write_file "$ports" 0644
    start_proxy "$1" -v "$EXAMPLES/ssl-bump.conf:/etc/squid/squid.conf:ro" \
        -v "$PKI_DIR/tls:$2:ro" \
        -v "$PKI_DIR/origin-ca.crt:/etc/ssl/certs/ca-certificates.crt:ro" \
        -v "$ports:/etc/squid/conf.d/test-ports.conf:ro" \
        --add-host "www.bank.example:$ORIGIN_HOST"
}

@test "examples/ssl-bump.conf: a site is bumped (re-signed by the mounted CA), a no_bump site is spliced" {
    local name url
    name=$(cname ssl-bump)
    start_bump_example "$name" /etc/squid/tls
    wait_ready "$name"
    url=$(https_origin /hello/bumped)
    run proxy_curl "$name" -v --cacert "$PKI_DIR/tls/tls.crt" "$url"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" =~ issuer:\ CN\ ?=\ ?CephaloProxy\ test\ bump\ CA ]] || fail "issuer: $output"
    [[ "$output" == *"path=/hello/bumped"* ]] || fail "$output"
    [[ "$output" == *"via=1.1 "*"squid/"* ]] || fail "Squid did not see inside the bumped request: $output"
    wait_access "$name" "$url" TCP_MISS/200
    # Spliced: curl sees the origin's own certificate (for origin.test, hence -k
    # for the name www.bank.example), and Squid only saw a tunnel.
    url=$(https_origin /hello/spliced www.bank.example)
    run proxy_curl "$name" -v -k "$url"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" =~ issuer:\ CN\ ?=\ ?CephaloProxy\ test\ origin\ CA ]] || fail "issuer: $output"
    [[ "$output" == *"path=/hello/spliced"* ]] || fail "$output"
    [[ "$output" == *$'via=\n'* || "$output" == *"via=" ]] || fail "Squid added Via inside a spliced connection: $output"
    wait_access "$name" "www.bank.example:$ORIGIN_HTTPS_PORT" "CONNECT"
    run container_logs "$name"
    [[ "$output" != *"https://www.bank.example"* ]] || fail "the spliced request was decrypted: $output"
    stops_cleanly "$name"
}

@test "the ssl-bump CA mounted at /etc/squid/ssl_cert (tls.crt, tls.key) signs bumped sites" {
    local name
    name=$(cname ssl-cert)
    start_bump_example "$name" /etc/squid/ssl_cert
    wait_ready "$name"
    run proxy_curl "$name" -v --cacert "$PKI_DIR/tls/tls.crt" "$(https_origin /hello/ssl-cert)"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" =~ issuer:\ CN\ ?=\ ?CephaloProxy\ test\ bump\ CA ]] || fail "issuer: $output"
    [[ "$output" == *"path=/hello/ssl-cert"* ]] || fail "$output"
    stops_cleanly "$name"
}

@test "examples/disk-cache.conf: the second request is a hit, and a new container on the same volume hits the disk" {
    local first second cache url body
    cache=$(group0_dir cache)
    url=$(origin_url /cacheable/disk)
    first=$(cname cache-first)
    start_proxy "$first" -v "$EXAMPLES/disk-cache.conf:/etc/squid/squid.conf:ro" -v "$cache:/var/cache/squid"
    wait_ready "$first"
    [ -d "$cache/00/00" ] || fail "no swap directories in the volume: $(ls "$cache")"
    run proxy_curl "$first" "$url"
    [ "$status" -eq 0 ] || fail "$output"
    body=$output
    wait_access "$first" "$url" TCP_MISS/200
    run proxy_curl "$first" "$url"
    [ "$output" = "$body" ] || fail "another body: $output"
    wait_access "$first" "$url" _HIT/200
    [ "$(grep -c 'GET /cacheable/disk ' "$ORIGIN_LOG")" -eq 1 ] || fail "the origin was asked again: $(cat "$ORIGIN_LOG")"
    stops_cleanly "$first"

    # A new container has an empty memory cache: a hit now comes from the disk.
    second=$(cname cache-second)
    start_proxy "$second" -v "$EXAMPLES/disk-cache.conf:/etc/squid/squid.conf:ro" -v "$cache:/var/cache/squid"
    wait_ready "$second"
    wait_log "$second" "Finished rebuilding storage from disk" 20
    run proxy_curl "$second" "$url"
    [ "$output" = "$body" ] || fail "another body: $output"
    wait_access "$second" "$url" TCP_HIT/200
    [ "$(grep -c 'GET /cacheable/disk ' "$ORIGIN_LOG")" -eq 1 ] || fail "the origin was asked again: $(cat "$ORIGIN_LOG")"
    stops_cleanly "$second"
}

@test "every example passes cephaloinit validate as it is" {
    local example mounts
    : | write_file "$BATS_TEST_TMPDIR/htpasswd" 0644
    for example in allowlist basic-auth parent-proxy disk-cache; do
        mounts=(-v "$EXAMPLES/$example.conf:/etc/squid/squid.conf:ro")
        case "$example" in
            allowlist) mounts+=(-v "$EXAMPLES/allowlist.acl:/etc/squid/allowlist.acl:ro") ;;
            basic-auth) mounts+=(-v "$BATS_TEST_TMPDIR/htpasswd:/etc/squid/htpasswd:ro") ;;
            parent-proxy) mounts+=(--add-host "upstream-proxy:$ORIGIN_HOST") ;;
        esac
        run run_image "${mounts[@]}" -- validate
        [ "$status" -eq 0 ] || fail "$example: $output"
    done
    run run_image -v "$EXAMPLES/ssl-bump.conf:/etc/squid/squid.conf:ro" -v "$PKI_DIR/tls:/etc/squid/tls:ro" -- validate
    [ "$status" -eq 0 ] || fail "ssl-bump: $output"
}

# --- docs/migration.md ---------------------------------------------------------------

@test "an upstream image's config naming Red Hat helper paths is refused with the image's equivalent" {
    local conf
    conf=$(conf_file squid.conf <<'CONF'
http_port 3128
auth_param basic program /usr/lib64/squid/basic_ncsa_auth /etc/squid/htpasswd
acl authenticated proxy_auth REQUIRED
http_access allow authenticated
http_access deny all
CONF
)
    run run_image -v "$conf:/etc/squid/squid.conf:ro" -- validate
    [ "$status" -eq 1 ] || fail "status $status: $output"
    [[ "$output" == *"[ERROR] auth_param in /etc/squid/squid.conf line 2 names /usr/lib64/squid/basic_ncsa_auth, which does not exist in this image; use /usr/lib/squid/basic_ncsa_auth"* ]] \
        || fail "$output"
}

@test "the upstream image's CACHE_SIZE_MB and numeric LOG_LEVEL each get one line saying what to use instead" {
    run run_image -e CACHE_SIZE_MB=500 -e LOG_LEVEL=2 -- validate
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"[WARNING] CACHE_SIZE_MB is not used by this image; a disk cache is a cache_dir line in squid.conf"*"examples/disk-cache.conf"* ]] \
        || fail "$output"
    [[ "$output" == *"[WARNING] Invalid LOG_LEVEL='2': "*"debug_options ALL,2"* ]] || fail "$output"
    # The example the message points to exists.
    [ -f "$EXAMPLES/disk-cache.conf" ]
}
