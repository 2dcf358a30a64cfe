"""One error hierarchy for the whole project.

Every error carries a ``retriable`` class attribute (as kafka-python's
``KafkaError``/``RetriableError`` do): the runner retries retriable errors with
backoff and sends the rest to the dead-letter topic.  Messages start with the
room they come from, e.g. ``"fetcher: refusing private address 10.0.0.5"``.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error this project raises on purpose."""

    retriable: bool = False


class RetriableError(PipelineError):
    """A transient failure: trying again later may succeed."""

    retriable = True


class ConfigError(PipelineError):
    """The configuration is invalid. ``problems`` lists ``(key_path, line, message)``."""

    def __init__(self, problems: list[tuple[str, int | None, str]], source: str = "config"):
        self.problems = problems
        self.source = source
        lines = []
        for path, line, msg in problems:
            where = f"{path or '<root>'}" + (f" (line {line})" if line else "")
            lines.append(f"{where}: {msg}")
        super().__init__(f"{source}: " + "; ".join(lines))


class MessageError(PipelineError):
    """A message on a topic cannot be decoded or breaks its topic's schema."""


class StageError(PipelineError):
    """A stage cannot handle an item, for good (goes to the DLQ)."""


class TransportError(RetriableError):
    """The bus (Kafka or the local log) failed; usually transient."""


# --- fetch errors, split by phase (httpx style) ---------------------------------

class FetchError(PipelineError):
    """Any failure of the fetcher. ``url`` is the URL being fetched when it failed."""

    def __init__(self, message: str, url: str | None = None):
        self.url = url
        super().__init__(message)


class InvalidURL(FetchError):
    """The URL is malformed or uses a scheme other than http/https."""


class RefusedAddress(FetchError):
    """The host resolves to an address that the configuration does not allow."""


class ConnectError(FetchError):
    """DNS resolution or the TCP/TLS connection failed."""

    retriable = True


class ConnectTimeout(ConnectError):
    """Connecting took longer than the connect timeout."""


class ReadTimeout(FetchError):
    """The server was too slow: the read timeout or overall deadline passed."""

    retriable = True


class TooManyRedirects(FetchError):
    """More redirects than allowed, or a redirect loop."""


class TooLarge(FetchError):
    """The body (counted after decompression) is bigger than ``fetch.max_bytes``."""


class BadContentType(FetchError):
    """The response's content type is not one the caller accepts."""


class HTTPStatusError(FetchError):
    """The server answered with an error status (4xx/5xx)."""

    def __init__(self, message: str, url: str | None = None, status: int = 0,
                 retry_after: float | None = None):
        super().__init__(message, url)
        self.status = status
        self.retry_after = retry_after
        # 408, 425, 429 and 5xx are worth retrying later; other 4xx are not.
        self.retriable = status in (408, 425, 429) or status >= 500


class RobotsDisallowed(FetchError):
    """robots.txt forbids this URL for our user agent."""


# --- fetch errors added with pipeline/fetcher.py ---------------------------------

class DecodingError(FetchError):
    """The body's Content-Encoding is unsupported or the compressed stream is corrupt."""


class FetchDeferred(FetchError):
    """The page was still pending (queued for a host slot, or in flight) when the caller's
    time box ended.  Retriable: the entry is retried later, and a fetch that was in flight
    goes on in the background so the retry can pick up its result."""

    retriable = True
# --- failures of the worker's own infrastructure, not of the input ------------------

class StoreError(RetriableError):
    """A stage's own store failed (SQLite under ``state_dir``: disk full, locked, corrupt).

    Not the input's fault: the runner aborts the unit and tries it again after a backoff,
    and never dead-letters its inputs for it."""


class CrashLoopError(StageError):
    """A worker died (killed: out of memory, a segfault, a hang past the watchdog) with this
    input in hand, ``runner.max_crashes`` times: it is dead-lettered so the stream goes on."""
