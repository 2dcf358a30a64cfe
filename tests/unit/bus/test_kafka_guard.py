"""The guard that ends a Kafka consumer call kafka-python never wakes up (no broker needed)."""

import threading
import time

import pytest

from pipeline.bus.kafka import _CallGuard, _HungCall


class _Net:
    """Stands in for kafka-python 3's network selector: a caller blocked on an Event until
    the IO loop sets it, which after the lost wake-up never happens on its own."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.exception: BaseException | None = None

    def wait(self):
        self.event.wait()
        if self.exception is not None:
            raise self.exception
        return "records"

    def _fail_pending_waiters(self, exc: BaseException) -> None:
        self.exception = exc
        self.event.set()


class _Consumer:
    def __init__(self) -> None:
        self._net = _Net()


def test_a_call_that_never_returns_is_ended_after_its_limit():
    guard = _CallGuard("test-guard")
    consumer = _Consumer()
    started = time.monotonic()
    with pytest.raises(_HungCall):
        guard.call(0.5, consumer, consumer._net.wait)
    assert time.monotonic() - started < 5
    guard.stop()


def test_a_call_that_returns_in_time_is_left_alone():
    guard = _CallGuard("test-guard")
    consumer = _Consumer()
    threading.Timer(0.2, consumer._net.event.set).start()
    assert guard.call(10, consumer, consumer._net.wait) == "records"
    # The deadline is cleared after the call: the guard does not fail a later, idle wait.
    time.sleep(1.5)
    assert consumer._net.exception is None
    guard.stop()
