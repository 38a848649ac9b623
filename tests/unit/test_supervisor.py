import json
import os

import pytest

from cephaloinit.logs import Logger
from cephaloinit.settings import Settings
from cephaloinit.supervisor import TRANSITIONS, State, Supervisor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def supervisor(tmp_path):
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    made = Supervisor(read_end, Settings(run_dir=str(tmp_path)), Logger("ERROR"))
    yield made
    made.core.close()
    os.close(read_end)
    os.close(write_end)


def test_every_start_up_state_can_stop_and_fail():
    for state in (State.INITIALIZING, State.VALIDATING, State.STARTING_HEALTH,
                  State.STARTING_SQUID, State.RUNNING):
        assert {State.SHUTTING_DOWN, State.ERROR} <= TRANSITIONS[state]


def test_every_state_ends_in_exited_and_exited_is_final():
    for state in State:
        if state is not State.EXITED:
            seen, frontier = set(), {state}
            while frontier:
                current = frontier.pop()
                seen.add(current)
                frontier |= TRANSITIONS[current] - seen
            assert State.EXITED in seen
    assert TRANSITIONS[State.EXITED] == frozenset()


def test_the_audited_document_names_every_state():
    with open(f"{REPO}/docs/state-machine.md") as file:
        document = file.read()
    for state in State:
        assert f"| {state.value} |" in document


def test_a_transition_outside_the_table_is_refused(supervisor):
    with pytest.raises(AssertionError, match="no transition INITIALIZING -> RUNNING"):
        supervisor.enter(State.RUNNING)


def test_each_transition_is_published_for_the_health_server(supervisor, tmp_path):
    supervisor.enter(State.VALIDATING)
    with open(f"{tmp_path}/cephaloinit.state") as file:
        published = json.load(file)  # the file itself, as any reader finds it
    assert published["state"] == "VALIDATING"
    assert published["ready"] is False
    assert published["supervisor_pid"] == os.getpid()
    assert published["squid_pid"] is None
    assert set(published) >= {"health_restarts", "started_at", "squid_port", "config", "version"}


def test_the_record_names_where_the_cache_manager_is_and_squids_version(supervisor, tmp_path):
    from cephaloinit import squidconf, statefile

    directives = tuple(squidconf.directives_in("https_port 3443 tls-cert=/c.pem\n"
                                               "http_port [::]:3129\n", "squid.conf"))
    supervisor.config = squidconf.read_config("squid.conf", directives)
    supervisor.squid_version = "6.13"
    supervisor.enter(State.VALIDATING)
    published = statefile.read(f"{tmp_path}/cephaloinit.state")
    assert (published.cachemgr_host, published.cachemgr_port) == ("::1", 3129)
    assert published.ports == (3443, 3129) and published.squid_port == 3443
    assert published.squid_version == "6.13"
