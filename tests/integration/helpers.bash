# Shared helpers of the container acceptance suites (docs/testing.md).
# shellcheck shell=bash
#
# Every .bats file does:
#
#   load helpers
#   setup_file()    { suite_setup_file [--origin] [--tls-origin]; }
#   teardown_file() { suite_teardown_file; }
#   teardown()      { suite_teardown; }
#
# and names its containers with `cname SUFFIX`; start_proxy records each one so
# that teardown removes it even when the test failed, and teardown_file removes
# anything left with the file's label, then the file's network and origin.
#
# Environment:
#   ENGINE          podman or docker (default: docker when its daemon answers, else podman)
#   IMAGE_NAME      the image under test (default: the tag make image gives, $IMAGE or
#                   cephaloproxy:$DEBIAN_RELEASE, under localhost/ with podman)
#   DEBIAN_RELEASE  trixie (default) or bookworm: the release the image was built from
#   CONTAINERS_CONF podman only; default container/containers.conf of this repository
#   ORIGIN_PYTHON   the host interpreter that runs origin.py (default /usr/bin/python3)

CP_TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CP_REPO_DIR=$(cd "$CP_TEST_DIR/../.." && pwd)

# The engine, the release and the image's tag as make image chooses them.
. "$CP_REPO_DIR/container/engine.sh"
pick_engine
export DEBIAN_RELEASE
IMAGE_NAME=${IMAGE_NAME:-$(image_name "$ENGINE")}
export IMAGE_NAME
if [ -z "${ORIGIN_PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then ORIGIN_PYTHON=/usr/bin/python3; else ORIGIN_PYTHON=python3; fi
fi

# Generous bounds for a loaded 2-core machine; a healthy run is far below them.
READY_TIMEOUT=${READY_TIMEOUT:-30}
# Every stop in this suite is given this grace period, far above what a stop
# should take, so "too slow" and "SIGKILLed by the engine" (137) stay distinct.
STOP_GRACE=${STOP_GRACE:-30}

# The directories the image writes (container/image-promises.toml), and the
# tmpfs mounts a --read-only run needs: one on each of them and on /tmp.
mapfile -t CP_WRITABLE_DIRS < <("$ORIGIN_PYTHON" "$CP_REPO_DIR/container/image_promises.py" writable)
[ ${#CP_WRITABLE_DIRS[@]} -gt 0 ] || { echo "helpers.bash: container/image_promises.py listed no writable directory" >&2; return 1; }
WRITABLE_TMPFS=()
for dir in "${CP_WRITABLE_DIRS[@]}" /tmp; do
    WRITABLE_TMPFS+=(--tmpfs "$dir")
done
unset dir
# The hardened run a security-conscious operator uses (docs/image.md), less
# the --user each suite chooses: read-only root with tmpfs on the writable
# directories only, no capabilities, no new privileges.
HARDENED=(--read-only "${WRITABLE_TMPFS[@]}" --cap-drop ALL --security-opt no-new-privileges)

now_ms() { date +%s%3N; }

# fail MESSAGE...: end the test with a message (bats shows stderr on failure).
fail() {
    printf '%s\n' "$*" >&2
    return 1
}

# --- per-file set-up and tear-down -------------------------------------------

# suite_setup_file [--origin] [--tls-origin]: check the engine and the image,
# create the file's network, start the origin server (HTTP, plus HTTPS with a
# test PKI for --tls-origin). Exports what the tests need.
suite_setup_file() {
    local origin=no tls=no
    for arg in "$@"; do
        case "$arg" in
            --origin) origin=yes ;;
            --tls-origin) origin=yes tls=yes ;;
            *) fail "suite_setup_file: unknown option $arg"; return 1 ;;
        esac
    done
    command -v "$ENGINE" >/dev/null || { fail "$ENGINE is not installed (ENGINE=$ENGINE)"; return 1; }
    engine version >/dev/null 2>&1 || { fail "$ENGINE does not answer ($ENGINE version failed)"; return 1; }
    engine image inspect "$IMAGE_NAME" >/dev/null 2>&1 \
        || { fail "image $IMAGE_NAME not found for $ENGINE: build it first (make image)"; return 1; }

    local base=${BATS_TEST_FILENAME##*/}
    base=${base%.bats}
    base=${base#test-}
    # Unique per file and per run: files can run one after another or side by side.
    export CP_RUN_ID="cpit-$base-$$"
    export CP_LABEL="io.cephaloproxy.test=$CP_RUN_ID"
    export CP_NETWORK=$CP_RUN_ID
    # No DNS server on it (podman's aardvark-dns may not be installed): Squid
    # finds the test names in /etc/hosts, written by --add-host.
    local dns=()
    [ "$ENGINE" = podman ] && dns=(--disable-dns)
    engine network create "${dns[@]}" --label "$CP_LABEL" "$CP_NETWORK" >/dev/null \
        || { fail "cannot create network $CP_NETWORK"; return 1; }
    local format='{{range .Subnets}}{{.Gateway}}{{end}}'
    [ "$ENGINE" = docker ] && format='{{range .IPAM.Config}}{{.Gateway}}{{end}}'
    # The host's address on that network: containers reach the host origin there.
    ORIGIN_HOST=$(engine network inspect --format "$format" "$CP_NETWORK" | head -n 1)
    export ORIGIN_HOST
    [ -n "$ORIGIN_HOST" ] || { fail "no gateway for network $CP_NETWORK"; return 1; }

    if [ "$origin" = yes ]; then
        origin_start "$tls"
    fi
}

# engine_only ENGINE REASON, first in setup_file of a file that needs one
# engine: under another engine it returns 1 (setup_file then returns 0 and
# creates nothing), and skip_other_engine, in setup(), skips each test with
# REASON. Debian 12's bats (1.8) cannot skip from setup_file: it reports the
# whole file as failed.
engine_only() {
    [ "$ENGINE" = "$1" ] && return 0
    export CP_SKIP_FILE="$2 (ENGINE=$ENGINE)"
    return 1
}
skip_other_engine() {
    if [ -n "${CP_SKIP_FILE:-}" ]; then skip "$CP_SKIP_FILE"; fi
}

suite_teardown_file() {
    [ -z "${CP_SKIP_FILE:-}" ] || return 0
    if [ -n "${CP_LABEL:-}" ]; then
        local left
        left=$(engine ps -a -q --filter "label=$CP_LABEL" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -z "$left" ] || remove_containers $left
        engine network rm "$CP_NETWORK" >/dev/null 2>&1 || true
    fi
    origin_stop
}

# Per test: remove this test's containers; when the test failed, show the end
# of their logs first (bats prints a failed test's output, teardown included).
suite_teardown() {
    local list=$BATS_TEST_TMPDIR/containers name
    [ -s "$list" ] || return 0
    if [ "${BATS_TEST_COMPLETED:-}" != 1 ]; then
        while read -r name; do
            echo "--- last log lines of $name:"
            engine logs "$name" 2>&1 | engine_noise_filter | tail -n 40
        done <"$list"
    fi
    # shellcheck disable=SC2046
    remove_containers $(sort -u "$list")
    rm -f "$list"
}

remove_containers() {
    [ $# -gt 0 ] || return 0
    if [ "$ENGINE" = podman ]; then
        engine rm -f -t 0 "$@" >/dev/null 2>&1 || true
    else
        engine rm -f "$@" >/dev/null 2>&1 || true
    fi
}

# --- the origin server (origin.py, on the host) -----------------------------

# origin_start yes|no: run origin.py in the background, HTTPS too with "yes";
# wait (with a deadline) for its port file. Exports ORIGIN_HTTP_PORT and,
# with TLS, ORIGIN_HTTPS_PORT and PKI_DIR (see make_test_pki).
origin_start() {
    local tls=$1 dir=$BATS_FILE_TMPDIR/origin tls_args=()
    mkdir -p "$dir"
    if [ "$tls" = yes ]; then
        export PKI_DIR=$BATS_FILE_TMPDIR/pki
        make_test_pki "$PKI_DIR" || return 1
        tls_args=(--tls-cert "$PKI_DIR/origin.crt" --tls-key "$PKI_DIR/origin.key")
    fi
    export ORIGIN_LOG=$dir/requests.log
    : >"$ORIGIN_LOG"
    # 3>&-: bats waits for fd 3 to close; a background process must not hold it.
    "$ORIGIN_PYTHON" "$CP_TEST_DIR/origin.py" --log "$ORIGIN_LOG" --port-file "$dir/ports" \
        "${tls_args[@]}" >"$dir/output" 2>&1 3>&- &
    echo $! >"$dir/pid"
    local deadline=$(( $(now_ms) + 10000 ))
    until [ -s "$dir/ports" ]; do
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null || [ "$(now_ms)" -gt "$deadline" ]; then
            fail "origin.py did not start: $(cat "$dir/output")"
            return 1
        fi
        sleep 0.05
    done
    ORIGIN_HTTP_PORT=$(sed -n 's/^http=//p' "$dir/ports")
    ORIGIN_HTTPS_PORT=$(sed -n 's/^https=//p' "$dir/ports")
    export ORIGIN_HTTP_PORT ORIGIN_HTTPS_PORT
}

origin_stop() {
    local pidfile=$BATS_FILE_TMPDIR/origin/pid pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    local deadline=$(( $(now_ms) + 5000 ))
    while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# origin_url [PATH]: the plain-HTTP origin as a container (Squid) reaches it.
origin_url() { echo "http://origin.test:$ORIGIN_HTTP_PORT${1:-/hello}"; }

# wait_origin_request PATTERN [SECONDS]: until the origin has logged a request
# matching the extended regex PATTERN.
wait_origin_request() {
    local pattern=$1 deadline=$(( $(now_ms) + ${2:-10} * 1000 ))
    until grep -Eq -- "$pattern" "$ORIGIN_LOG"; do
        [ "$(now_ms)" -lt "$deadline" ] || { fail "the origin never saw a request matching '$pattern'"; return 1; }
        sleep 0.05
    done
}

# make_test_pki DIR: two throw-away CAs made with openssl:
#   origin-ca.crt        signs origin.crt/origin.key (CN and SAN origin.test): the TLS origin
#   tls/tls.crt, tls.key the ssl-bump CA mounted into the proxy at /etc/squid/tls,
#                        with origin-ca.crt beside them so Squid can verify the origin
# Modes as a user would set them: directory 0755, key 0640 group 0, so any UID
# in group 0 (the image's contract) can read it and nobody else can.
make_test_pki() {
    local dir=$1
    mkdir -p "$dir/tls"
    (
        set -e
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=CephaloProxy test origin CA" \
            -keyout origin-ca.key -out origin-ca.crt
        openssl req -new -newkey rsa:2048 -nodes -subj "/CN=origin.test" \
            -keyout origin.key -out origin.csr
        printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
            'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:origin.test' >origin.ext
        openssl x509 -req -in origin.csr -CA origin-ca.crt -CAkey origin-ca.key -CAcreateserial \
            -days 2 -extfile origin.ext -out origin.crt
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=CephaloProxy test bump CA" \
            -keyout tls/tls.key -out tls/tls.crt
        cp origin-ca.crt tls/origin-ca.crt
        chmod 0755 tls
        chmod 0644 tls/tls.crt tls/origin-ca.crt
        chgrp 0 tls/tls.key
        chmod 0640 tls/tls.key
    ) >"$dir/openssl.log" 2>&1 || { fail "openssl failed: $(cat "$dir/openssl.log")"; return 1; }
}

# --- containers ---------------------------------------------------------------

# cname SUFFIX: a container name unique to this run, file and test.
cname() { echo "$CP_RUN_ID-$BATS_TEST_NUMBER-$1"; }

# In setup_file (no test directory yet) the container is the file's, removed by
# its label in teardown_file.
track_container() { echo "$1" >>"${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/containers"; }

# start_proxy NAME [RUN OPTIONS...] [-- IMAGE ARGS...]: run the image detached on
# the file's network, ports 3128 and 8080 published on 127.0.0.1 (random host
# ports), origin.test and blocked.test resolving to the host origin (Squid reads
# /etc/hosts). The image's HEALTHCHECK is disabled (--no-healthcheck) unless the
# pseudo-option --keep-healthcheck is given. Fails, with the engine's message,
# when the engine cannot create the container; a container that starts and then
# exits is the test's business.
start_proxy() {
    local name=$1 opts=() args=() health=(--no-healthcheck) out
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --) shift; args=("$@"); break ;;
            --keep-healthcheck) health=() ;;
            *) opts+=("$1") ;;
        esac
        shift
    done
    track_container "$name"
    out=$(engine run -d --name "$name" --label "$CP_LABEL" --network "$CP_NETWORK" \
        --add-host "origin.test:$ORIGIN_HOST" --add-host "blocked.test:$ORIGIN_HOST" \
        --add-host "www.blocked.test:$ORIGIN_HOST" \
        -p 127.0.0.1::3128 -p 127.0.0.1::8080 "${health[@]}" "${opts[@]}" \
        "$IMAGE_NAME" "${args[@]}" 2>&1 >/dev/null) \
        || { fail "$ENGINE run $name failed: $out"; return 1; }
}

# run_image [RUN OPTIONS...] -- [IMAGE ARGS...]: a foreground, removed-after run
# (validate, --version, a one-off command with --entrypoint). Use with bats' run.
# stdout and stderr come merged, without the engine's own noise.
run_image() {
    local opts=() out status=0
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    out=$(engine run --rm --no-healthcheck --label "$CP_LABEL" --network "$CP_NETWORK" \
        "${opts[@]}" "$IMAGE_NAME" "$@" 2>&1) || status=$?
    printf '%s\n' "$out" | engine_noise_filter
    return "$status"
}

# Podman's own complaints on this kind of machine (no systemd for healthcheck
# timers, no syslog for conmon) are not the container's output.
engine_noise_filter() {
    grep -v -e 'level=error msg=.*systemd' -e '^failed to connect to syslog' || true
}

# host_port NAME CONTAINER_PORT: the published host port. Looked up once per
# container and remembered: the mapping lasts as long as the container, and an
# engine busy stopping it may be slow to answer.
host_port() {
    local cache=${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/port-$1-$2 mapping
    if [ -s "$cache" ]; then
        cat "$cache"
        return 0
    fi
    mapping=$(engine port "$1" "$2/tcp" 2>/dev/null | head -n 1)
    [ -n "$mapping" ] || { fail "container $1 publishes no port $2"; return 1; }
    echo "${mapping##*:}" | tee "$cache"
}

# host_children PID: the children of a host process, every thread's, one a line.
host_children() {
    cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | sort -u
}

# child_host_pid NAME COMM [CMDLINE_WORD]: host PID of the container's PID 1
# child whose /proc comm is COMM (and whose command line has the word). The
# image has no kill binary and no shell: its processes are signalled from here.
child_host_pid() {
    local name=$1 comm=$2 word=${3:-} init child
    init=$(engine inspect --format '{{.State.Pid}}' "$name")
    [ -n "$init" ] && [ "$init" != 0 ] || { fail "no host PID for $name"; return 1; }
    for child in $(host_children "$init"); do
        [ "$(cat "/proc/$child/comm" 2>/dev/null)" = "$comm" ] || continue
        if [ -n "$word" ] && ! tr '\0' ' ' <"/proc/$child/cmdline" | grep -qw -- "$word"; then
            continue
        fi
        echo "$child"
        return 0
    done
    fail "no child '$comm' of $name (init host PID $init)"
}

# health_status NAME: Docker's verdict from the image's HEALTHCHECK.
health_status() { engine inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null; }

# wait_health NAME STATUS [SECONDS]: until Docker reports that health status.
wait_health() {
    local name=$1 want=$2 deadline=$(( $(now_ms) + ${3:-$READY_TIMEOUT} * 1000 ))
    until [ "$(health_status "$name")" = "$want" ]; do
        [ "$(now_ms)" -lt "$deadline" ] \
            || { fail "$name is '$(health_status "$name")', not $want, after ${3:-$READY_TIMEOUT}s"; return 1; }
        sleep 0.2
    done
}

container_status() { engine inspect --format '{{.State.Status}}' "$1" 2>/dev/null; }
exit_code() { engine inspect --format '{{.State.ExitCode}}' "$1"; }

# Logs without podman's own complaints about a missing systemd (healthcheck timers).
container_logs() { engine logs "$1" 2>&1 | engine_noise_filter; }

# wait_ready NAME [SECONDS]: until GET /ready answers 200. Fails early, with the
# logs, when the container exits instead.
wait_ready() {
    local name=$1 deadline=$(( $(now_ms) + ${2:-$READY_TIMEOUT} * 1000 )) port code
    while :; do
        if [ "$(container_status "$name")" != running ]; then
            fail "container $name is $(container_status "$name") before it became ready"
            return 1
        fi
        port=$(host_port "$name" 8080 2>/dev/null) || port=
        if [ -n "$port" ]; then
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/ready") || true
            if [ "$code" = 200 ]; then
                host_port "$name" 3128 >/dev/null 2>&1 || true  # remembered while it is easy
                return 0
            fi
        fi
        [ "$(now_ms)" -lt "$deadline" ] || { fail "container $name not ready within ${2:-$READY_TIMEOUT}s"; return 1; }
        sleep 0.1
    done
}

# wait_log NAME FIXED_STRING [SECONDS]: until the container's log has the line.
wait_log() {
    local name=$1 text=$2 deadline=$(( $(now_ms) + ${3:-$READY_TIMEOUT} * 1000 ))
    until container_logs "$name" | grep -Fq -- "$text"; do
        [ "$(now_ms)" -lt "$deadline" ] || { fail "'$text' not logged by $name within ${3:-$READY_TIMEOUT}s"; return 1; }
        sleep 0.1
    done
}

# wait_exited NAME [SECONDS]: until the container has exited.
wait_exited() {
    local name=$1 deadline=$(( $(now_ms) + ${2:-$READY_TIMEOUT} * 1000 )) status
    while :; do
        status=$(container_status "$name")
        case "$status" in exited|stopped|dead) return 0 ;; esac
        [ "$(now_ms)" -lt "$deadline" ] || { fail "container $name still $status after ${2:-$READY_TIMEOUT}s"; return 1; }
        sleep 0.05
    done
}

# stop_container NAME: the engine's stop with STOP_GRACE; prints its duration in ms.
stop_container() {
    local start
    start=$(now_ms)
    engine stop -t "$STOP_GRACE" "$1" >/dev/null 2>&1 || { fail "$ENGINE stop $1 failed"; return 1; }
    echo $(( $(now_ms) - start ))
}

# The start-up contract: the lines a default start logs, in this order
# (docs/state-machine.md). For assert_logged_in_order "$name" "${STARTUP_LINES[@]}".
STARTUP_LINES=(
    "[INFO] CephaloProxy entrypoint starting (UID: 1000, GID: 0)"
    "[INFO] Validating Squid configuration..."
    "[INFO] Configuration validation passed"
    "[INFO] Starting health check server on port 8080"
    "[INFO] Health check server started (PID: "
    "[INFO] Starting Squid proxy..."
    "[INFO] Squid started with PID "
    "[INFO] Container ready, entering monitoring loop"
)

# assert_logged_in_order NAME LINE...: each fixed string appears in the log,
# each on a line after the previous one's.
assert_logged_in_order() {
    local name=$1 logs after=0 text found
    shift
    logs=$(container_logs "$name")
    for text in "$@"; do
        found=$(printf '%s\n' "$logs" | awk -v after="$after" -v text="$text" \
            'NR > after && index($0, text) { print NR; exit }')
        if [ -z "$found" ]; then
            fail "not logged after line $after: '$text'" "--- log of $name:" "$logs"
            return 1
        fi
        after=$found
    done
}

# --- requests -----------------------------------------------------------------

# proxy_curl NAME [CURL ARGS...]: curl through the container's published proxy port.
proxy_curl() {
    local name=$1 port
    shift
    port=$(host_port "$name" 3128) || return 1
    curl -sS --max-time 30 --proxy "http://127.0.0.1:$port" "$@"
}

# health_curl NAME PATH [CURL ARGS...]: curl the health server.
health_curl() {
    local name=$1 path=$2 port
    shift 2
    port=$(host_port "$name" 8080) || return 1
    curl -sS --max-time 10 "$@" "http://127.0.0.1:$port$path"
}

# http_code CURL_FUNCTION ARGS...: only the status code of a request.
http_code() { "$@" -o /dev/null -w '%{http_code}'; }

# write_file PATH MODE < content: a config file as a user would mount it.
write_file() {
    mkdir -p "$(dirname "$1")"
    cat >"$1"
    chmod "$2" "$1"
}

# A minimal squid.conf for mounted-config tests: the default image's container
# settings (logs to stdout/stderr, writable paths only) with PORT and any extra
# directives from stdin placed before the access rules.
custom_squid_conf() {
    local port=${1:-3128}
    cat <<EOF
http_port $port
acl localnet src 10.0.0.0/8
acl localnet src 172.16.0.0/12
acl localnet src 192.168.0.0/16
$(cat)
http_access allow localnet
http_access allow localhost
http_access deny all
pid_filename /var/run/squid/squid.pid
access_log stdio:/dev/stdout
cache_log /dev/stderr
cache_store_log none
logfile_rotate 0
coredump_dir /var/spool/squid
pinger_enable off
max_filedescriptors 1024
shutdown_lifetime 5 seconds
EOF
}
