"""What an operator sees, against real Squid as a true PID 1: every line of a
LOG_FORMAT=json run as JSON, the cache manager's figures in /metrics, Squid's
version in /metrics and /status, the cache manager found on a port other than
127.0.0.1 at the first one, and a `squid -v` that fails costing one warning."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from ..ports import free_port
from .conftest import poll
from .test_proxy_run import SQUID, basic_config, fetch, health_get, origin, proxy, run  # noqa: F401

pytestmark = pytest.mark.timeout(90)


def samples(proxy) -> dict[tuple, float]:
    """/metrics as {(name, (label, value), ...): value}."""
    found = {}
    for line in health_get(proxy, "/metrics").decode().splitlines():
        if line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        pairs = tuple(re.findall(r'(\w+)="([^"]*)"', labels))
        found[(name, *pairs)] = float(value)
    return found


def squid_version() -> str:
    output = subprocess.run([SQUID, "-v"], capture_output=True, text=True, timeout=10).stdout
    return re.search(r"Version (\S+)", output).group(1)


def test_every_line_of_a_json_run_is_one_json_object(run, proxy, origin):
    """Start, requests, a reload, a stop: Squid's lines too, the access log as fields."""
    init = run(env={"LOG_FORMAT": "json"})  # the image's default config and container layer
    init.wait_for_line("Container ready", timeout=30)
    assert fetch(proxy, origin + "/") == b"hello from the origin\n"
    init.signal(signal.SIGHUP)
    init.wait_for_line("Squid reloaded its configuration", timeout=30)
    assert fetch(proxy, origin + "/again") == b"hello from the origin\n"
    init.wait_for_line('"url": "' + origin + '/again"')
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=30) == 0

    objects = []
    for line in init.lines:
        parsed = json.loads(line)  # every line, or this raises naming it
        assert isinstance(parsed, dict) and {"time", "level"} <= set(parsed), line
        objects.append(parsed)
    squids = [o for o in objects if o.get("source") == "squid"]
    ours = [o["message"] for o in objects if "source" not in o]
    assert "Container ready, entering monitoring loop" in ours and "Shutdown complete" in ours
    assert any(o["message"].startswith("Starting Squid Cache version") for o in squids)
    requests = [o for o in squids if o.get("url", "").startswith(origin)]
    assert [r["url"] for r in requests] == [origin + "/", origin + "/again"]
    for request in requests:
        assert request["method"] == "GET" and request["status"] == 200
        assert request["client"] == "127.0.0.1" and request["user"] is None
        assert isinstance(request["bytes"], int) and request["bytes"] > 0
        assert isinstance(request["duration_ms"], int) and request["hierarchy"].startswith("HIER_DIRECT/")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", request["time"])
    assert not [o for o in squids if "message" in o and o["message"].startswith("cephaloproxy-access")]


def test_text_mode_keeps_squids_own_lines(run, proxy, origin):
    init = run()
    init.wait_for_line("Container ready", timeout=30)
    fetch(proxy, origin + "/text")
    line = init.wait_for_line(origin + "/text").decode()
    assert re.match(r"\d+\.\d{3} +\d+ 127\.0\.0\.1 TCP_MISS/200 \d+ GET ", line), line  # Squid's native format
    assert not any(raw.startswith(b"{") for raw in init.lines)


def test_metrics_carry_squids_descriptors_hit_ratios_service_times_and_version(run, proxy, origin):
    init = run()
    init.wait_for_line("Container ready", timeout=30)
    for _ in range(3):
        fetch(proxy, origin + "/")
    found = samples(proxy)
    version = squid_version()
    assert found[("cephaloproxy_squid_cachemgr_up",)] == 1
    assert found[("cephaloproxy_build_info", ("version", found_version(found)),
                  ("squid_version", version))] == 1
    assert found[("cephaloproxy_squid_max_fds",)] == 1024  # the container layer's bound
    assert 5 <= found[("cephaloproxy_squid_open_fds",)] < 1024
    ratios = {k: v for k, v in found.items() if k[0] == "cephaloproxy_squid_hit_ratio"}
    assert {(k[1][1], k[2][1]) for k in ratios} == {("requests", "5m"), ("requests", "60m"),
                                                    ("bytes", "5m"), ("bytes", "60m")}
    assert all(0 <= v <= 1 for v in ratios.values())
    medians = {k: v for k, v in found.items()
               if k[0] == "cephaloproxy_squid_median_service_time_seconds"}
    assert {k[1][1] for k in medians} == {"all", "hits", "misses", "dns"} and len(medians) == 8
    assert all(v >= 0 for v in medians.values())
    assert found[("cephaloproxy_squid_client_http_requests_total",)] >= 3
    status = json.loads(health_get(proxy, "/status"))
    assert status["squid_version"] == version and status["ports"] == [proxy.squid_port]
    assert status["state"] == "RUNNING" and status["health_restarts"] == 0
    assert status["squid_pid"] > 1 and status["supervisor_pid"] == 1 and status["state_since"] > 0
    assert status["config"] == proxy.env["SQUID_DEFAULT_CONFIG"]


def found_version(found) -> str:
    return next(dict(k[1:])["version"] for k in found if k[0] == "cephaloproxy_build_info")


@pytest.mark.parametrize("ports", [
    "http_port [::1]:{port}\n",
    "http_port 127.0.0.1:{other} intercept\nhttp_port 127.0.0.1:{port}\n",
])
def test_the_cache_manager_is_found_on_the_first_port_it_can_use(run, proxy, ports):
    text = basic_config(proxy).replace(f"http_port {proxy.squid_port}\n",
                                       ports.format(port=proxy.squid_port, other=free_port()))
    proxy.write_config(text)
    init = run()
    init.wait_for_line("Container ready", timeout=30)
    found = samples(proxy)
    assert found[("cephaloproxy_squid_cachemgr_up",)] == 1, init.text()[-2000:]
    assert found[("cephaloproxy_squid_max_fds",)] == 1024
    assert "cache manager not reachable" not in init.text()


def test_a_failing_squid_v_costs_one_warning_and_an_empty_label(run, proxy):
    wrapper = f"{proxy.root}/squid"  # where the unprivileged UID can run it
    with open(wrapper, "w") as file:
        file.write(f'#!/bin/sh\n[ "$1" = -v ] && exit 3\nexec {SQUID} "$@"\n')
    os.chmod(wrapper, 0o755)
    proxy.write_config(basic_config(proxy))
    init = run(env={"SQUID_BINARY": wrapper})
    init.wait_for_line("Container ready", timeout=30)
    assert init.text().count("Squid's version is unknown") == 1
    assert "exited with code 3" in init.text()
    poll(lambda: json.loads(health_get(proxy, "/status"))["state"] == "RUNNING", what="RUNNING")
    assert json.loads(health_get(proxy, "/status"))["squid_version"] is None
    found = samples(proxy)
    assert found[("cephaloproxy_build_info", ("version", found_version(found)), ("squid_version", ""))] == 1


def test_smp_workers_lines_are_json_and_descriptors_are_summed(run, proxy):
    """With `workers 2` Squid's kids prefix their cache.log lines (`kid1|`) and
    the coordinator's info page sums the kids' descriptors."""
    proxy.write_config(basic_config(proxy, "workers 2\n"))
    init = run(env={"LOG_FORMAT": "json"})
    init.wait_for_line("Container ready", timeout=40)
    found = samples(proxy)
    assert found[("cephaloproxy_squid_cachemgr_up",)] == 1
    assert found[("cephaloproxy_squid_max_fds",)] == 2 * 1024
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=40) == 0
    objects = [json.loads(line) for line in init.lines]  # every line, or this raises
    starts = [o for o in objects if o.get("message", "").startswith("Starting Squid Cache version")]
    assert len(starts) >= 2 and all(o["source"] == "squid" for o in starts)  # master and kids
    assert not [o for o in objects if re.match(r"\d{4}/\d\d/\d\d ", o.get("message", ""))]
