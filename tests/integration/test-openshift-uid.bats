#!/usr/bin/env bats
# OpenShift runs images as an arbitrary UID in group 0: the proxy must start,
# serve, and report that UID, with no /etc/passwd entry for it.

load helpers

setup_file() { suite_setup_file --origin; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

serves_as_uid() {
    local uid=$1 name
    name=$(cname "uid$uid")
    start_proxy "$name" --user "$uid:0"
    wait_ready "$name"
    run container_logs "$name"
    [[ "$output" == *"CephaloProxy entrypoint starting (UID: $uid, GID: 0)"* ]] || fail "$output"
    [[ "$output" != *"[ERROR]"* ]] || fail "$output"
    run http_code proxy_curl "$name" "$(origin_url "/hello/uid$uid")"
    [ "$output" = 200 ] || fail "proxy answered $output"
    run http_code health_curl "$name" /health
    [ "$output" = 200 ]
}

@test "UID 1234567 in group 0 (an OpenShift-style range) starts and serves" {
    serves_as_uid 1234567
}

@test "UID 99999 in group 0 starts and serves" {
    serves_as_uid 99999
}

@test "UID 50000 in group 0 starts and serves" {
    serves_as_uid 50000
}
