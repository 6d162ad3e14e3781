import pytest

from tests.faults.server import FaultServer


@pytest.fixture(scope="module")
def fault_server():
    with FaultServer(trickle_interval=0.5, silent_seconds=60.0) as server:
        yield server
