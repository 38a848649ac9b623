"""The peers' squid.conf and the runner's options (benchmarks/containers.py, compare.py)."""

import re

from benchmarks import compare, containers
from cephaloinit.validators import config


def test_the_peers_run_the_container_layer_cephaloinit_puts_around_the_default_config():
    text = containers.render_peer_config()
    assert re.search(r"@[A-Z_]+@", text) is None
    assert text.startswith(config.DEFAULTS.splitlines()[0])
    assert "\npid_filename /var/run/squid/squid.pid\n" in text  # writable by UID 1000, group 0
    assert "\nshutdown_lifetime 23 seconds\n" in text  # from the default SHUTDOWN_TIMEOUT, 30 s
    assert "\nhttp_port 3128\n" in text
    assert "\ninclude" not in text  # never the host's own /etc/squid/conf.d
    assert text.rstrip().endswith("access_log stdio:/dev/stdout")


def test_quick_shortens_what_is_not_given():
    options = compare.parse_options(["--quick", "--runs", "3"])
    assert (options.runs, options.idle, options.load_seconds, options.orphans) == (3, 5.0, 2.0, 2000)
    options = compare.parse_options([])
    assert (options.runs, options.idle, options.load_seconds, options.orphans) == (5, 30.0, 3.0, 10000)
