#!/usr/bin/env bats
# deploy/kubernetes.yaml, played by `podman kube play`: the hardened Deployment
# becomes ready, serves, and stops cleanly with its readiness drain.
# (podman only: docker has no kube play.)

load helpers

setup_file() {
    engine_only podman "podman kube play: docker has no equivalent" || return 0
    suite_setup_file --origin
    export MANIFEST=$BATS_FILE_TMPDIR/kubernetes.yaml
    sed "s|image: cephaloproxy:trixie|image: $IMAGE_NAME|" "$CP_REPO_DIR/deploy/kubernetes.yaml" >"$MANIFEST"
    engine kube play --network "$CP_NETWORK" "$MANIFEST" >/dev/null \
        || { fail "podman kube play failed"; return 1; }
    export POD=cephaloproxy-pod-0 CONTAINER=cephaloproxy-pod-0-proxy
}
setup() { skip_other_engine; }
teardown_file() {
    [ -z "${CP_SKIP_FILE:-}" ] || return 0
    if [ -n "${MANIFEST:-}" ]; then
        engine kube down "$MANIFEST" >/dev/null 2>&1 || true
    fi
    suite_teardown_file
}

in_pod() { engine exec "$CONTAINER" /usr/bin/python3 -I -S "$@"; }

@test "the Deployment becomes ready: /ready answers 200 inside the pod" {
    local deadline=$(( $(now_ms) + READY_TIMEOUT * 1000 ))
    until in_pod -m cephaloinit check --url http://127.0.0.1:8080/ready >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "not ready within ${READY_TIMEOUT}s: $(container_logs "$CONTAINER" | tail -20)"
        sleep 0.1
    done
}

@test "the pod runs hardened: read-only root, UID 1000 in group 0, no new privileges, emptyDirs" {
    run engine inspect --format '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.HostConfig.SecurityOpt}}' "$CONTAINER"
    [[ "$output" == "true 1000:0 "*"no-new-privileges"* ]] || fail "$output"
    run engine inspect --format '{{range .Mounts}}{{.Destination}} {{end}}' "$CONTAINER"
    local dir
    for dir in "${CP_WRITABLE_DIRS[@]}" /tmp; do
        [[ " $output " == *" $dir "* ]] || fail "$dir is not a volume: $output"
    done
    run container_logs "$CONTAINER"
    [[ "$output" == *"CephaloProxy entrypoint starting (UID: 1000, GID: 0)"* ]] || fail "$output"
}

@test "the pod proxies a request to the origin" {
    run in_pod -c "
import socket
s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
s.sendall(b'GET http://$ORIGIN_HOST:$ORIGIN_HTTP_PORT/hello/kube HTTP/1.0\r\n\r\n')
answer = b''
while chunk := s.recv(65536):
    answer += chunk
print(answer.split(b'\r\n', 1)[0].decode())
print('path=/hello/kube' in answer.decode(errors='replace'))
"
    [ "${lines[0]}" = "HTTP/1.1 200 OK" ] || fail "$output"
    [ "${lines[1]}" = "True" ] || fail "$output"
}

@test "stopping the pod drains readiness first, then exits 0 well inside the grace period" {
    local started took
    started=$(now_ms)
    engine pod stop -t 45 "$POD" >/dev/null
    took=$(( $(now_ms) - started ))
    [ "$(exit_code "$CONTAINER")" = 0 ] || fail "exit code $(exit_code "$CONTAINER")"
    assert_logged_in_order "$CONTAINER" \
        "Received signal SIGTERM, initiating graceful shutdown..." \
        "Readiness set to 503; Squid keeps serving for 5s (READINESS_DRAIN)" \
        "Shutdown complete"
    # READINESS_DRAIN (5 s) plus Squid's own stop (about 1.5 s), far below 45 s.
    [ "$took" -lt 15000 ] || fail "the stop took ${took} ms"
}
