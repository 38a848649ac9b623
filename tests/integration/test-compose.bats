#!/usr/bin/env bats
# deploy/docker-compose.yml, played by Compose as a user would: `up -d`, ready
# through the published ports, a request proxied to the origin, the hardening
# the file promises, then `stop` (exit 0) and `down` (exit 0, nothing left).
# The tests run in order on one Compose project. (docker only: Debian's
# docker-compose, or the `docker compose` plugin.)

load helpers

setup_file() {
    engine_only docker "Compose plays the file on the Docker Engine" || return 0
    if command -v docker-compose >/dev/null; then
        COMPOSE=docker-compose
    elif docker compose version >/dev/null 2>&1; then
        COMPOSE="docker compose"
    else
        fail "no docker-compose and no docker compose plugin (apt-get install -y docker-compose)"
        return 1
    fi
    export COMPOSE
    suite_setup_file --origin
    export COMPOSE_PROJECT=$CP_RUN_ID COMPOSE_FILE=$CP_REPO_DIR/deploy/docker-compose.yml
    export CEPHALOPROXY_IMAGE=$IMAGE_NAME
    # The file publishes fixed host ports (3128, 8080); free ones here, so that
    # a proxy already running on this machine does not get in the way.
    local ports
    ports=$(PYTHONPATH=$CP_REPO_DIR "$ORIGIN_PYTHON" -c '
from tests.ports import free_port
print(free_port(), free_port())
') || { fail "no free ports"; return 1; }
    read -r PROXY_PORT HEALTH_PORT <<<"$ports"
    export PROXY_PORT HEALTH_PORT
}
setup() { skip_other_engine; }
teardown_file() {
    [ -z "${CP_SKIP_FILE:-}" ] || return 0
    if [ -n "${COMPOSE_PROJECT:-}" ]; then
        compose down -t 0 --remove-orphans >/dev/null 2>&1 || true
    fi
    suite_teardown_file
}

# shellcheck disable=SC2086  # COMPOSE is a command of one or two words
compose() { $COMPOSE -p "$COMPOSE_PROJECT" -f "$COMPOSE_FILE" "$@"; }

proxy_id() { compose ps -q proxy; }

@test "docker-compose up -d starts the proxy; /ready answers 200 on the published health port" {
    run compose up -d
    [ "$status" -eq 0 ] || fail "up -d: $output"
    local deadline=$(( $(now_ms) + READY_TIMEOUT * 1000 )) code
    until code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HEALTH_PORT/ready") \
        && [ "$code" = 200 ]; do
        [ "$(now_ms)" -lt "$deadline" ] \
            || fail "no 200 from /ready within ${READY_TIMEOUT}s ($code): $(compose logs --no-color 2>&1 | tail -20)"
        sleep 0.1
    done
}

@test "the Compose proxy relays a request to the origin through its published port" {
    local gateway
    gateway=$(engine network inspect --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "${COMPOSE_PROJECT}_default")
    [ -n "$gateway" ] || fail "no gateway for ${COMPOSE_PROJECT}_default"
    run curl -sS --max-time 30 --proxy "http://127.0.0.1:$PROXY_PORT" "http://$gateway:$ORIGIN_HTTP_PORT/hello/compose"
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *"path=/hello/compose"* ]] || fail "$output"
    wait_origin_request '/hello/compose'
}

@test "the Compose proxy runs as the file says: read-only root, UID 1000:0, no capabilities, no new privileges" {
    local id
    id=$(proxy_id)
    [ -n "$id" ] || fail "no proxy container in project $COMPOSE_PROJECT"
    run engine inspect --format '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}' "$id"
    [[ "$output" == "true 1000:0 [ALL] "*"no-new-privileges"* ]] || fail "$output"
}

@test "docker-compose stop exits the proxy 0 promptly, and down removes everything with exit 0" {
    local id started took
    id=$(proxy_id)
    [ -n "$id" ] || fail "no proxy container in project $COMPOSE_PROJECT"
    started=$(now_ms)
    run compose stop
    took=$(( $(now_ms) - started ))
    [ "$status" -eq 0 ] || fail "stop: $output"
    [ "$(exit_code "$id")" = 0 ] || fail "exit code $(exit_code "$id")"
    # The file's grace period is 45 s; an idle proxy needs about 1.5 s.
    [ "$took" -lt 10000 ] || fail "compose stop took ${took} ms"
    assert_logged_in_order "$id" \
        "[INFO] Container ready, entering monitoring loop" \
        "[INFO] Received signal SIGTERM, initiating graceful shutdown..." \
        "[INFO] Shutdown complete"
    run compose down
    [ "$status" -eq 0 ] || fail "down: $output"
    run engine ps -a -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT"
    [ -z "$output" ] || fail "containers left: $output"
    run engine network inspect "${COMPOSE_PROJECT}_default"
    [ "$status" -ne 0 ] || fail "network ${COMPOSE_PROJECT}_default left behind"
}
