"""Broker publishers for the relay: NATS JetStream and AMQP (RabbitMQ), behind one sync facade.

Each publisher runs its asyncio client (nats-py, aio-pika) on an event loop of its own,
in a daemon thread, and offers the relay a blocking :meth:`Publisher.publish` that returns
only once the broker has confirmed every message of the batch (DESIGN §8). The broker
clients are imported lazily, so ``core`` imports without the ``relay`` extra.

Subjects and routing keys are built from event fields made *subject-safe*: every ``.``,
whitespace character, ``*`` and ``>`` in a field becomes ``_`` (a ``.`` would split one
field into two tokens, and ``*``/``>`` are NATS wildcards), and an empty field becomes
``_`` (an empty token is not a valid subject). The same rule applies to AMQP routing keys,
so one event gets the same words on both brokers.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import importlib
import logging
import re
import string
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from core.errors import BrokerSetupError, BrokerUnavailable

if TYPE_CHECKING:
    import aio_pika.abc
    import nats.aio.client
    import nats.js

__all__ = [
    "Message",
    "Publisher",
    "display_url",
    "open_publisher",
    "subject_safe",
]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

#: The fields a subject template may name.
SUBJECT_FIELDS: Final = frozenset({"category", "type", "stream_id"})

#: Longest AMQP routing key, in bytes (a ``shortstr`` of AMQP 0-9-1).
AMQP_MAX_ROUTING_KEY: Final = 255
#: Longest NATS protocol line (``HPUB subject reply sizes``) the server accepts by
#: default, and what that line holds besides the subject (reply inbox, sizes): a longer
#: one makes the server close the connection.
NATS_MAX_CONTROL_LINE: Final = 4_096
NATS_CONTROL_OVERHEAD: Final = 160
#: The most a message's headers can take: an event id, a position, and a stream id and a
#: type of at most 256 characters of up to 4 UTF-8 bytes each, with the header names.
_NATS_HEADERS_AT_MOST: Final = 4 * 256 * 2 + 256

#: Smallest JetStream duplicate window (seconds) of a stream the publisher creates: the
#: relay re-sends a batch after a failure, and the re-send must still deduplicate.
DUPLICATE_WINDOW: Final = 120.0

_UNSAFE: Final = re.compile(r"[.*>\s]")
_USERINFO_PASSWORD: Final = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


@dataclass(frozen=True, slots=True)
class Message:
    """One event, ready to publish.

    Attributes:
        event_id: the event's id: JetStream's ``Nats-Msg-Id`` and AMQP's ``message_id``,
            so that a re-sent event is deduplicated.
        category: the stream's category (the stream id up to its first ``-``).
        type: the event type.
        stream_id: the stream the event belongs to.
        position: the event's position in the store.
        body: the event as one JSON object, exactly as ``eventscope export`` prints it.
    """

    event_id: str
    category: str
    type: str
    stream_id: str
    position: int
    body: bytes

    def headers(self) -> dict[str, str]:
        """The Eventscope headers every broker message carries (values as text)."""
        return {
            "Eventscope-Position": str(self.position),
            "Eventscope-Stream": self.stream_id,
            "Eventscope-Type": self.type,
        }


@functools.lru_cache(maxsize=65_536)  # categories and types repeat: most calls are hits
def subject_safe(value: str) -> str:
    """``value`` fit to be one subject token or routing-key word.

    Every ``.``, whitespace character, ``*`` and ``>`` becomes ``_``; an empty value
    becomes ``_``.
    """
    return _UNSAFE.sub("_", value) or "_"


def display_url(url: str) -> str:
    """A broker URL fit to show or log: its password becomes ``***``."""
    return _USERINFO_PASSWORD.sub(r"\1***@", url)


def _url_password(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def _template_fields(template: str) -> set[str]:
    fields = set()
    for _literal, name, _spec, _conversion in string.Formatter().parse(template):
        if name is not None:
            fields.add(name)
    return fields


def _require(modules: tuple[str, ...], package: str) -> None:
    """Import the client's ``modules`` now, in the caller's thread: a missing client is
    told apart from a missing broker, and the loop thread never imports (CPython 3.11
    can fail with "AST constructor recursion depth mismatch" when an import hook parses
    sources in two threads at once, as PySide6's does).

    Raises:
        ImportError: the client library is not installed (one line, naming the extra).
    """
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"publishing needs {package}: pip install 'eventscope[relay]'") from error


class _LoopThread:
    """An asyncio event loop running forever in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        """Cancel what is still pending on the loop (a client's reader tasks), let it
        finish, then stop and close the loop: no coroutine is left to be collected
        unfinished."""
        if self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._cancel_pending(), self.loop).result(timeout=5)
        except (RuntimeError, asyncio.CancelledError, TimeoutError):
            pass  # the loop stopped already, or is stuck: it is stopped below all the same
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()

    @staticmethod
    async def _cancel_pending() -> None:
        me = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not me]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class Publisher(abc.ABC):
    """Synchronous facade over an asyncio client running on its own event-loop thread.

    Not for concurrent use by several threads (calls are serialised by a lock). After a
    :class:`BrokerUnavailable`, the next :meth:`publish` connects again: the caller owns
    the retry policy (backoff), the publisher never retries on its own.
    """

    def __init__(self, url: str, *, window: int, timeout: float) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.url = url
        self.window = window
        self.timeout = timeout
        self._connected = False
        self._closed = False
        self._lock = threading.Lock()
        self._loop = _LoopThread(name=f"eventscope-publisher {display_url(url)}")

    @property
    def location(self) -> str:
        """The broker URL fit to show (a password hidden)."""
        return display_url(self.url)

    def connect(self) -> None:
        """Connect now (also done by the first :meth:`publish`).

        Raises:
            BrokerUnavailable: the broker cannot be reached within the timeout.
            BrokerSetupError: it can, but is set up so that publishing cannot work.
        """
        with self._lock:
            self._ensure_connected()

    def publish(self, messages: Sequence[Message]) -> None:
        """Publish every message, windowed/asynchronously, and return only once every one is
        confirmed by the broker (JetStream PubAck / AMQP publisher confirm).

        Messages go out in the order given, with at most ``window`` unconfirmed at once.

        Raises:
            BrokerUnavailable: the broker cannot be reached, or a confirm failed or did not
                come within the timeout. Then the caller re-sends the whole batch later:
                duplicates are fine, event ids deduplicate them.
        """
        with self._lock:
            if not messages:
                return
            self._ensure_connected()
            self._call("publish", self._publish(messages))

    def close(self) -> None:
        """Disconnect and stop the event-loop thread; the publisher is unusable after."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drop_connection()
            self._loop.stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ensure_connected(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.location}: the publisher is closed")
        if not self._connected:
            self._call("connect", asyncio.wait_for(self._connect(), self.timeout))
            self._connected = True

    def _call(self, action: str, coroutine: Awaitable[None]) -> None:
        async def run() -> None:
            await coroutine

        try:
            self._loop.run(run())
        except (BrokerUnavailable, BrokerSetupError):
            self._drop_connection()
            raise
        except Exception as error:  # the clients raise many types (OSError, their own, ...)
            self._drop_connection()
            raise BrokerUnavailable(self._one_line(action, error)) from error

    def _drop_connection(self) -> None:
        """Forget the connection (best effort: it may already be broken)."""
        self._connected = False
        try:
            self._loop.run(asyncio.wait_for(self._disconnect(), self.timeout))
        except Exception:  # a broken connection may fail to close: it is dropped anyway
            pass

    def _one_line(self, action: str, error: BaseException) -> str:
        if isinstance(error, TimeoutError):
            reason = str(error) or f"no answer within {self.timeout:g} s"
        else:
            text = " ".join(str(error).split()) or type(error).__name__
            reason = f"{type(error).__name__}: {text}" if str(error) else text
        password = _url_password(self.url)
        if password:
            reason = reason.replace(password, "***")
        return f"cannot {action} to {self.location}: {reason}"

    def problem(self, message: Message) -> str | None:
        """Why the broker can never take ``message`` (too long a subject or routing key,
        too large for the broker), in one line; None when it can. Re-sending such a
        message would fail the same way forever. Call it connected: some limits are the
        server's own."""
        return None

    @abc.abstractmethod
    async def _connect(self) -> None:
        """Open the connection (and declare what the broker side needs)."""

    @abc.abstractmethod
    async def _publish(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` in order and wait for every confirm."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Close the connection, if any."""


async def _confirm_all(
    messages: Sequence[Message],
    send: Callable[[Message], Awaitable[asyncio.Future[Any]]],
    timeout: float,
    lost: asyncio.Event | None = None,
) -> None:
    """Send ``messages`` in order with ``send`` (which returns the confirm's future once the
    message is on its way), then wait up to ``timeout`` for every confirm, or until
    ``lost`` is set (the connection is gone: no confirm will come).

    ``send`` itself waits while ``window`` confirms are outstanding.
    """
    confirms: list[asyncio.Future[Any]] = []
    failures: list[BaseException] = []

    def note_failure(confirm: asyncio.Future[Any]) -> None:
        if not confirm.cancelled() and (error := confirm.exception()) is not None:
            failures.append(error)

    try:
        for message in messages:
            if failures:  # stop sending: the whole batch is re-sent later anyway
                raise failures[0]
            confirm = await send(message)
            confirm.add_done_callback(note_failure)
            confirms.append(confirm)
        all_confirmed = asyncio.gather(*confirms, return_exceptions=True)
        all_confirmed.add_done_callback(_retrieved)
        waits: list[asyncio.Future[Any]] = [all_confirmed]
        if lost is not None:
            waits.append(asyncio.ensure_future(lost.wait()))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        # A client drops (cancels) what awaits a confirm when its connection closes.
        pending = sum(not confirm.done() or confirm.cancelled() for confirm in confirms)
        gone = (lost is not None and lost.is_set()) or any(c.cancelled() for c in confirms)
        if pending and gone:
            raise ConnectionError(
                f"the connection was lost with {pending} of {len(messages)} publishes unconfirmed"
            )
        if pending:
            raise TimeoutError(
                f"{pending} of {len(messages)} publishes unconfirmed after {timeout:g} s"
            )
        errors = [confirm.exception() for confirm in confirms]
        first_error = next((error for error in errors if error is not None), None)
        if first_error is not None:
            raise first_error
    finally:
        for confirm in confirms:
            if confirm.done() and not confirm.cancelled():
                confirm.exception()  # retrieved: asyncio would log it otherwise
            confirm.cancel()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a finished future's exception as seen (asyncio logs it otherwise)."""
    if not future.cancelled():
        future.exception()


class NatsPublisher(Publisher):
    """Publishes to NATS JetStream; the stream is created (file storage) when missing.

    Args:
        url: ``nats://host:port`` (credentials in the URL are passed to the server).
        subject: the subject template, with fields ``{category}``, ``{type}`` and
            ``{stream_id}`` (each made subject-safe, see :func:`subject_safe`).
        jetstream_stream: the JetStream stream that stores the messages.
        window: most publishes awaiting their PubAck at once.
        timeout: seconds to connect, and to wait for an ack.
    """

    def __init__(
        self, url: str, *, subject: str, jetstream_stream: str, window: int, timeout: float
    ) -> None:
        unknown = _template_fields(subject) - SUBJECT_FIELDS
        if unknown:
            raise ValueError(
                f"subject template {subject!r}: unknown field(s) {', '.join(sorted(unknown))}"
                f" (known: category, stream_id, type)"
            )
        _require(
            ("nats", "nats.errors", "nats.js", "nats.js.api", "nats.js.errors", "nats.aio.client"),
            "nats-py",
        )
        super().__init__(url, window=window, timeout=timeout)
        self.subject = subject
        self._fields = _template_fields(subject)
        self.jetstream_stream = jetstream_stream
        self.stream_subjects = [stream_subjects_of(subject)]
        self.subject_pattern = subject_pattern_of(subject)
        self._nc: nats.aio.client.Client | None = None
        self._js: nats.js.JetStreamContext | None = None
        self._lost: asyncio.Event | None = None

    def subject_of(self, message: Message) -> str:
        """The subject ``message`` is published on."""
        fields = self._fields
        return self.subject.format(
            category=subject_safe(message.category) if "category" in fields else "",
            type=subject_safe(message.type) if "type" in fields else "",
            stream_id=subject_safe(message.stream_id) if "stream_id" in fields else "",
        )

    def problem(self, message: Message) -> str | None:
        """Too long a subject for the server's protocol line, or a message (body and
        headers) larger than the server's ``max_payload``."""
        subject = self.subject_of(message).encode()
        if len(subject) + NATS_CONTROL_OVERHEAD > NATS_MAX_CONTROL_LINE:
            return (
                f"subject of {len(subject):,} bytes: NATS takes at most "
                f"{NATS_MAX_CONTROL_LINE - NATS_CONTROL_OVERHEAD:,} (shorten --subject)"
            )
        limit = self._nc.max_payload if self._nc is not None else 0
        most = len(message.body) + len(subject) + len(message.event_id) + _NATS_HEADERS_AT_MOST
        if not limit or most < limit:
            return None  # the usual case, told without counting the headers
        headers = {"Nats-Msg-Id": message.event_id, **message.headers()}
        size = len(message.body) + sum(len(k) + len(v.encode()) + 4 for k, v in headers.items())
        if size + 12 > limit:  # the NATS/1.0 line and the blank line that end headers
            return f"message of {size:,} bytes: the NATS server takes at most {limit:,}"
        return None

    async def _connect(self) -> None:
        import nats
        import nats.errors
        import nats.js.api
        import nats.js.errors

        errors: list[Exception] = []

        async def record(error: Exception) -> None:
            """Keep the error: nats-py would log it, and says only "no servers" at the end."""
            errors.append(error)

        lost = self._lost = asyncio.Event()

        async def gone() -> None:
            lost.set()  # the publishes waiting for their PubAck fail now, not at the timeout

        try:
            # Two immediate attempts, then NoServersError: retrying is the relay's policy.
            self._nc = await nats.connect(
                self.url,
                connect_timeout=max(1, round(self.timeout)),
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=record,
                disconnected_cb=gone,
                closed_cb=gone,
            )
        except nats.errors.NoServersError:
            if errors:
                raise errors[-1] from None
            raise
        self._js = self._nc.jetstream(timeout=self.timeout, publish_async_max_pending=self.window)
        try:
            info = await self._js.stream_info(self.jetstream_stream)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(
                nats.js.api.StreamConfig(
                    name=self.jetstream_stream,
                    subjects=self.stream_subjects,
                    storage=nats.js.api.StorageType.FILE,
                    duplicate_window=DUPLICATE_WINDOW,
                )
            )
            return
        covering = info.config.subjects or []
        if not any(_covers(subject, self.subject_pattern) for subject in covering):
            raise BrokerSetupError(
                f"JetStream stream {self.jetstream_stream!r} takes {', '.join(covering) or 'no'}"
                f" subjects, not {self.subject_pattern}: add that subject to the stream, or"
                f" choose another --jetstream-stream or --subject"
            )
        window = info.config.duplicate_window or 0
        if window < DUPLICATE_WINDOW:
            _log.warning(
                "JetStream stream %r drops duplicates within %g s only: an event re-sent "
                "later than that (by a relay restarted after a crash) is stored twice",
                self.jetstream_stream,
                window,
            )

    async def _publish(self, messages: Sequence[Message]) -> None:
        js = self._js
        assert js is not None

        async def send(message: Message) -> asyncio.Future[Any]:
            headers = {"Nats-Msg-Id": message.event_id, **message.headers()}
            # A stall timeout only when the window is full: with one, nats-py waits in a
            # task of its own, which yields to the loop, and its flusher then writes each
            # message in a syscall of its own (a third of the throughput).
            full = js.publish_async_pending() >= self.window
            return await js.publish_async(
                self.subject_of(message),
                message.body,
                wait_stall=self.timeout if full else None,
                headers=headers,
            )

        await _confirm_all(messages, send, self.timeout, self._lost)

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()


def _covers(stream_subject: str, pattern: str) -> bool:
    """Whether a stream's subject (``*`` a token, ``>`` the rest) takes every subject the
    ``pattern`` (literal tokens and ``*``, see :func:`subject_pattern_of`) stands for."""
    wanted, given = pattern.split("."), stream_subject.split(".")
    for index, token in enumerate(given):
        if token == ">":
            return index < len(wanted)
        if index >= len(wanted) or (token != "*" and token != wanted[index]):
            return False
        if token != "*" and wanted[index] == "*":
            return False
    return len(given) == len(wanted)


def subject_pattern_of(template: str) -> str:
    """The subjects a template yields, as a pattern: each token naming a field is ``*``
    (a field's value is made one token, see :func:`subject_safe`)."""
    return ".".join("*" if _template_fields(token) else token for token in template.split("."))


def stream_subjects_of(template: str) -> str:
    """The JetStream stream subject covering every subject ``template`` yields.

    The template's literal leading tokens followed by ``>`` (``eventscope.>`` for
    ``eventscope.{category}.{type}``), or the template itself when it names no field.

    Raises:
        ValueError: the template does not start with a literal token.
    """
    if not _template_fields(template):
        return template
    literal = template.split("{", 1)[0]
    tokens = literal.split(".")[:-1]  # the last token is (partly) a field
    if not tokens or not all(tokens):
        raise ValueError(
            f"subject template {template!r} must start with a literal token "
            f"(as in 'eventscope.{{category}}.{{type}}')"
        )
    return ".".join([*tokens, ">"])


class AmqpPublisher(Publisher):
    """Publishes to a durable AMQP topic exchange with publisher confirms (RabbitMQ).

    Args:
        url: ``amqp://user:pass@host:port/vhost``.
        exchange: the topic exchange (declared durable if missing).
        window: most publishes awaiting their confirm at once.
        timeout: seconds to connect, and to wait for a confirm.
    """

    def __init__(self, url: str, *, exchange: str, window: int, timeout: float) -> None:
        _require(("aio_pika", "aio_pika.connection", "aiormq"), "aio-pika")
        super().__init__(url, window=window, timeout=timeout)
        self.exchange = exchange
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    @staticmethod
    def routing_key_of(message: Message) -> str:
        """The routing key ``message`` is published with: ``<category>.<type>``."""
        return f"{subject_safe(message.category)}.{subject_safe(message.type)}"

    def problem(self, message: Message) -> str | None:
        """A routing key longer than AMQP allows (255 bytes)."""
        key = self.routing_key_of(message).encode()
        if len(key) > AMQP_MAX_ROUTING_KEY:
            return f"routing key of {len(key):,} bytes: AMQP takes at most {AMQP_MAX_ROUTING_KEY}"
        return None

    async def _connect(self) -> None:
        import aio_pika
        import aio_pika.connection
        import aiormq.exceptions

        # Built here rather than by aio_pika.connect(), so that a connect cut short by
        # the timeout still leaves a connection for _disconnect to close.
        connection = aio_pika.Connection(aio_pika.connection.make_url(self.url))
        self._connection = connection
        await connection.connect(timeout=self.timeout)
        channel = await connection.channel(publisher_confirms=True)
        try:
            self._exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True, timeout=self.timeout
            )
        except aiormq.exceptions.ChannelPreconditionFailed as error:
            raise BrokerSetupError(
                f"exchange {self.exchange!r} exists, but not as a durable topic exchange "
                f"({' '.join(str(error).split())}): choose another --exchange"
            ) from None

    async def _publish(self, messages: Sequence[Message]) -> None:
        import aio_pika

        exchange = self._exchange
        assert exchange is not None
        window = asyncio.Semaphore(self.window)

        async def send(message: Message) -> asyncio.Future[Any]:
            try:
                await asyncio.wait_for(window.acquire(), self.timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"{self.window} publishes unconfirmed after {self.timeout:g} s"
                ) from None
            amqp_message = aio_pika.Message(
                message.body,
                message_id=message.event_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={
                    "Eventscope-Position": message.position,
                    "Eventscope-Stream": message.stream_id,
                    "Eventscope-Type": message.type,
                },
            )
            # The task reaches the channel's (FIFO) publish lock before the next one
            # starts, so frames leave in the order given.
            confirm = asyncio.ensure_future(
                exchange.publish(
                    amqp_message,
                    self.routing_key_of(message),
                    mandatory=False,
                    timeout=self.timeout,
                )
            )
            confirm.add_done_callback(lambda _: window.release())
            await asyncio.sleep(0)
            return confirm

        await _confirm_all(messages, send, self.timeout)

    async def _disconnect(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            await connection.close()


def open_publisher(
    url: str,
    *,
    subject: str = "eventscope.{category}.{type}",
    jetstream_stream: str = "EVENTSCOPE",
    exchange: str = "eventscope",
    window: int = 256,
    timeout: float = 10.0,
) -> Publisher:
    """Connect a publisher to the broker at ``url``.

    Args:
        url: ``nats://host:port`` (JetStream) or ``amqp://user:pass@host:port/vhost``.
        subject: NATS only: the subject template (fields ``{category}``, ``{type}``,
            ``{stream_id}``, each made subject-safe).
        jetstream_stream: NATS only: the stream, created if missing (file storage,
            subjects from the template's literal prefix, a 120 s duplicate window).
        exchange: AMQP only: the durable topic exchange, declared if missing.
        window: most publishes awaiting their confirm at once.
        timeout: seconds to connect, and to wait for a confirm.

    Returns:
        A connected publisher; close it when done.

    Raises:
        ValueError: the URL's scheme is neither ``nats`` nor ``amqp``, or the subject
            template is unusable.
        ImportError: the broker's client library (the ``relay`` extra) is not installed.
        BrokerUnavailable: the broker cannot be reached.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    publisher: Publisher
    if scheme in {"nats", "tls"}:
        publisher = NatsPublisher(
            url, subject=subject, jetstream_stream=jetstream_stream, window=window, timeout=timeout
        )
    elif scheme in {"amqp", "amqps"}:
        publisher = AmqpPublisher(url, exchange=exchange, window=window, timeout=timeout)
    else:
        raise ValueError(
            f"{display_url(url)}: not a broker URL (expected nats://host:port "
            f"or amqp://user:pass@host:port/vhost)"
        )
    try:
        publisher.connect()
    except BaseException:
        publisher.close()
        raise
    return publisher
