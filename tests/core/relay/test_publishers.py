"""The relay's publishers against the real brokers: NATS JetStream and RabbitMQ (DESIGN §8)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.errors import BrokerSetupError, BrokerUnavailable
from core.relay.publishers import Message, open_publisher, subject_safe

nats = pytest.importorskip("nats", reason="nats-py is not installed (the relay extra)")
aio_pika = pytest.importorskip("aio_pika", reason="aio-pika is not installed (the relay extra)")

NATS_PORT = 4222
AMQP_PORT = 5672
NATS_URL = f"nats://127.0.0.1:{NATS_PORT}"
AMQP_URL = f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/"
COUNT = 2_000


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


needs_nats = pytest.mark.skipif(
    not _reachable(NATS_PORT), reason=f"no NATS server on 127.0.0.1:{NATS_PORT}"
)
needs_rabbitmq = pytest.mark.skipif(
    not _reachable(AMQP_PORT), reason=f"no RabbitMQ on 127.0.0.1:{AMQP_PORT}"
)


def _messages(
    count: int = COUNT, *, category: str = "order", type_: str = "Placed"
) -> list[Message]:
    messages = []
    for position in range(1, count + 1):
        stream_id = f"{category}-{position % 7}"
        body = json.dumps(
            {"position": position, "stream_id": stream_id, "type": type_, "data": {"n": "é" * 3}},
            ensure_ascii=False,
        ).encode()
        messages.append(Message(str(uuid.uuid4()), category, type_, stream_id, position, body))
    return messages


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Proxy:
    """A TCP proxy to a broker that a test can cut (close every connection) or stall
    (swallow every byte, so no confirm ever comes back)."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.stalled = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.stalled.is_set():
                    target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                end.close()

    def cut(self) -> None:
        for end in self._sockets:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sockets.clear()

    def close(self) -> None:
        self._listener.close()
        self.cut()


@pytest.fixture
def proxy_to() -> Iterator[Any]:
    proxies: list[_Proxy] = []

    def make(port: int) -> _Proxy:
        proxies.append(_Proxy(port))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


# --- NATS JetStream ---------------------------------------------------------------------


async def _nats_admin(action: Any) -> Any:
    nc = await nats.connect(NATS_URL)
    try:
        return await action(nc.jetstream())
    finally:
        await nc.close()


@pytest.fixture
def jetstream() -> Iterator[dict[str, str]]:
    """A unique stream name and subject prefix; the stream is deleted afterwards."""
    token = uuid.uuid4().hex[:12]
    names = {"stream": f"TEST_{token}", "prefix": f"test_{token}"}
    yield names

    async def delete(js: Any) -> None:
        try:
            await js.delete_stream(names["stream"])
        except nats.js.errors.NotFoundError:
            pass

    asyncio.run(_nats_admin(delete))


def _open_nats(names: dict[str, str], url: str = NATS_URL, **options: Any) -> Any:
    return open_publisher(
        url,
        subject=names["prefix"] + ".{category}.{type}",
        jetstream_stream=names["stream"],
        **options,
    )


def _stream_state(names: dict[str, str]) -> Any:
    async def info(js: Any) -> Any:
        return await js.stream_info(names["stream"])

    return asyncio.run(_nats_admin(info))


def _stored(names: dict[str, str], count: int) -> list[Any]:
    """Every message of the stream, in stream order."""

    async def read(js: Any) -> list[Any]:
        subscription = await js.pull_subscribe(
            f"{names['prefix']}.>",
            stream=names["stream"],
            config=nats.js.api.ConsumerConfig(ack_policy=nats.js.api.AckPolicy.NONE),
        )
        stored: list[Any] = []
        while len(stored) < count:
            batch = await subscription.fetch(500, timeout=5)
            stored += batch
        return stored

    return list(asyncio.run(_nats_admin(read)))


@needs_nats
def test_jetstream_stores_every_message_in_order_with_headers_and_body_once(
    jetstream: dict[str, str],
) -> None:
    messages = _messages()
    with _open_nats(jetstream, window=64) as publisher:
        publisher.publish(messages)
        # publish() returned: every message is acknowledged, hence stored.
        assert _stream_state(jetstream).state.messages == COUNT

        stored = _stored(jetstream, COUNT)
        assert [m.data for m in stored] == [m.body for m in messages]
        assert [m.subject for m in stored] == [f"{jetstream['prefix']}.order.Placed"] * COUNT
        assert [m.headers for m in stored] == [
            {
                "Nats-Msg-Id": m.event_id,
                "Eventscope-Position": str(m.position),
                "Eventscope-Stream": m.stream_id,
                "Eventscope-Type": m.type,
            }
            for m in messages
        ]

        publisher.publish(messages)  # a relay re-sending after a lost confirm
    state = _stream_state(jetstream).state
    assert (state.messages, state.last_seq) == (COUNT, COUNT)


@needs_nats
def test_jetstream_stream_is_created_on_file_with_a_duplicate_window_of_two_minutes(
    jetstream: dict[str, str],
) -> None:
    _open_nats(jetstream).close()
    config = _stream_state(jetstream).config
    assert config.duplicate_window >= 120
    assert config.storage == nats.js.api.StorageType.FILE
    assert config.subjects == [f"{jetstream['prefix']}.>"]


@needs_nats
def test_jetstream_subjects_are_made_safe(jetstream: dict[str, str]) -> None:
    message = _messages(1, category="shop.eu west", type_="Order*Placed>v2")[0]
    with _open_nats(jetstream) as publisher:
        publisher.publish([message])
    (stored,) = _stored(jetstream, 1)
    assert stored.subject == f"{jetstream['prefix']}.shop_eu_west.Order_Placed_v2"
    assert stored.headers["Eventscope-Type"] == "Order*Placed>v2"  # headers keep the truth


@needs_nats
def test_jetstream_publish_after_a_lost_connection_raises_then_reconnects(
    jetstream: dict[str, str], proxy_to: Any
) -> None:
    proxy = proxy_to(NATS_PORT)
    messages = _messages(300)
    with _open_nats(jetstream, f"nats://127.0.0.1:{proxy.port}", timeout=2) as publisher:
        publisher.publish(messages[:100])
        proxy.cut()
        time.sleep(0.1)
        with pytest.raises(BrokerUnavailable):
            publisher.publish(messages[100:200])
        publisher.publish(messages[100:])  # the next call reconnects
    stored = _stored(jetstream, 300)
    assert [m.data for m in stored] == [m.body for m in messages]


@needs_nats
@pytest.mark.parametrize("window", [16, 256], ids=["window-full", "window-open"])
def test_jetstream_unconfirmed_publishes_raise_within_the_timeout(
    jetstream: dict[str, str], proxy_to: Any, window: int
) -> None:
    """With a window wider than the batch, only waiting for confirms can notice."""
    proxy = proxy_to(NATS_PORT)
    with _open_nats(jetstream, f"nats://127.0.0.1:{proxy.port}", timeout=1, window=window) as pub:
        proxy.stalled.set()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable) as raised:
            pub.publish(_messages(100))
        assert time.monotonic() - started < 4
    assert str(raised.value).startswith("cannot publish to ")
    assert "\n" not in str(raised.value)


@needs_nats
def test_jetstream_publishes_in_flight_fail_as_soon_as_the_connection_is_lost(
    jetstream: dict[str, str], proxy_to: Any
) -> None:
    """Not at the confirm timeout: a PubAck cannot come over a closed connection."""
    proxy = proxy_to(NATS_PORT)
    with _open_nats(jetstream, f"nats://127.0.0.1:{proxy.port}", timeout=30) as publisher:
        proxy.stalled.set()  # the messages go out; no PubAck comes back
        raised: list[BaseException] = []

        def publish() -> None:
            try:
                publisher.publish(_messages(100))
            except BaseException as error:
                raised.append(error)

        thread = threading.Thread(target=publish)
        thread.start()
        time.sleep(0.5)  # waiting for its PubAcks
        started = time.monotonic()
        proxy.cut()
        thread.join(30)
        took = time.monotonic() - started
    assert took < 5, f"took {took:.1f} s: it waited for the confirm timeout"
    (error,) = raised
    assert isinstance(error, BrokerUnavailable)
    assert "the connection was lost with 100 of 100 publishes unconfirmed" in str(error)


# --- AMQP (RabbitMQ) --------------------------------------------------------------------


@pytest.fixture
def rabbit() -> Iterator[dict[str, str]]:
    """A unique exchange and a queue bound to all of it; both deleted afterwards."""
    token = uuid.uuid4().hex[:12]
    names = {"exchange": f"test-{token}", "queue": f"test-{token}"}
    yield names

    async def delete() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(names["queue"])
            await channel.exchange_delete(names["exchange"])

    asyncio.run(delete())


def _bind_queue(names: dict[str, str], binding_key: str = "#") -> None:
    async def declare() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                names["exchange"], aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(names["queue"], durable=True)
            await queue.bind(exchange, binding_key)

    asyncio.run(declare())


def _queued(names: dict[str, str]) -> int:
    async def count() -> int:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(names["queue"], passive=True)
            return int(queue.declaration_result.message_count)

    return asyncio.run(count())


def _consume(names: dict[str, str], count: int) -> list[Any]:
    async def consume() -> list[Any]:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=500)
            queue = await channel.declare_queue(names["queue"], passive=True)
            received: list[Any] = []
            async with queue.iterator() as deliveries:
                async for delivery in deliveries:
                    await delivery.ack()
                    received.append(delivery)
                    if len(received) == count:
                        break
            return received

    return asyncio.run(asyncio.wait_for(consume(), 10))


def _open_amqp(names: dict[str, str], url: str = AMQP_URL, **options: Any) -> Any:
    return open_publisher(url, exchange=names["exchange"], **options)


@needs_rabbitmq
def test_amqp_queue_receives_every_message_in_order_once_confirmed(
    rabbit: dict[str, str],
) -> None:
    _bind_queue(rabbit)
    messages = _messages()
    with _open_amqp(rabbit, window=64) as publisher:
        publisher.publish(messages)
        # publish() returned: every publish is confirmed, hence queued.
        assert _queued(rabbit) == COUNT

    received = _consume(rabbit, COUNT)
    assert [d.body for d in received] == [m.body for m in messages]
    assert [d.message_id for d in received] == [m.event_id for m in messages]
    assert [d.headers for d in received] == [
        {
            "Eventscope-Position": m.position,
            "Eventscope-Stream": m.stream_id,
            "Eventscope-Type": m.type,
        }
        for m in messages
    ]
    assert {d.delivery_mode for d in received} == {aio_pika.DeliveryMode.PERSISTENT}
    assert {d.content_type for d in received} == {"application/json"}
    assert {d.routing_key for d in received} == {"order.Placed"}


@needs_rabbitmq
def test_amqp_exchange_is_a_durable_topic_exchange(rabbit: dict[str, str]) -> None:
    _open_amqp(rabbit).close()

    async def redeclare(durable: bool) -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.declare_exchange(
                rabbit["exchange"], aio_pika.ExchangeType.TOPIC, durable=durable
            )

    asyncio.run(redeclare(durable=True))  # the same declaration: accepted
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        asyncio.run(redeclare(durable=False))  # a different one: refused


@needs_rabbitmq
def test_amqp_routing_keys_are_made_safe(rabbit: dict[str, str]) -> None:
    _bind_queue(rabbit, "shop_eu_west.Order_Placed_v2")
    message = _messages(1, category="shop.eu west", type_="Order*Placed>v2")[0]
    with _open_amqp(rabbit) as publisher:
        publisher.publish([message])
    (delivery,) = _consume(rabbit, 1)
    assert delivery.routing_key == "shop_eu_west.Order_Placed_v2"
    assert delivery.body == message.body


@needs_rabbitmq
def test_amqp_publish_after_a_lost_connection_raises_then_reconnects(
    rabbit: dict[str, str], proxy_to: Any
) -> None:
    _bind_queue(rabbit)
    proxy = proxy_to(AMQP_PORT)
    messages = _messages(300)
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    with _open_amqp(rabbit, url, timeout=2) as publisher:
        publisher.publish(messages[:100])
        proxy.cut()
        time.sleep(0.1)
        with pytest.raises(BrokerUnavailable):
            publisher.publish(messages[100:200])
        publisher.publish(messages[100:])  # the next call reconnects
    received = _consume(rabbit, _queued(rabbit))
    assert [d.message_id for d in received][:100] == [m.event_id for m in messages[:100]]
    assert {d.message_id for d in received} == {m.event_id for m in messages}


@needs_rabbitmq
@pytest.mark.parametrize("window", [16, 256], ids=["window-full", "window-open"])
def test_amqp_unconfirmed_publishes_raise_within_the_timeout(
    rabbit: dict[str, str], proxy_to: Any, window: int
) -> None:
    """With a window wider than the batch, only waiting for confirms can notice."""
    proxy = proxy_to(AMQP_PORT)
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    with _open_amqp(rabbit, url, timeout=1, window=window) as publisher:
        proxy.stalled.set()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable) as raised:
            publisher.publish(_messages(100))
        assert time.monotonic() - started < 4
    assert str(raised.value).startswith("cannot publish to ")
    assert "\n" not in str(raised.value)


# --- Both -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["nats://relay:s3cr3t-pw@127.0.0.1:{port}", "amqp://guest:s3cr3t-pw@127.0.0.1:{port}/"],
    ids=["nats", "amqp"],
)
def test_an_unreachable_broker_raises_one_line_within_the_timeout_hiding_the_password(
    url: str,
) -> None:
    url = url.format(port=_free_port())
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as raised:
        open_publisher(url, timeout=2)
    assert time.monotonic() - started < 2
    message = str(raised.value)
    assert "\n" not in message
    assert "s3cr3t-pw" not in message
    assert f"{url.split('s3cr3t-pw')[0]}***@127.0.0.1" in message


@pytest.mark.parametrize("url", ["kafka://127.0.0.1:9092", "127.0.0.1:4222", "http://x"])
def test_other_url_schemes_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(ValueError, match="not a broker URL") as raised:
        open_publisher(url)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("order", "order"),
        ("shop.eu", "shop_eu"),
        ("a b\tc\nd", "a_b_c_d"),
        ("Order*Placed>", "Order_Placed_"),
        ("", "_"),
        ("Bestellung-ü", "Bestellung-ü"),
    ],
)
def test_subject_safe(value: str, safe: str) -> None:
    assert subject_safe(value) == safe


@pytest.mark.parametrize("template", ["{category}.{type}", "x.{category}.{nope}", "x{type}"])
def test_unusable_subject_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="subject template"):
        open_publisher(NATS_URL, subject=template)


@pytest.mark.parametrize(
    ("url", "client"), [(NATS_URL, "nats"), (AMQP_URL, "aio_pika")], ids=["nats", "amqp"]
)
def test_a_missing_client_library_is_an_import_error_naming_the_extra(
    url: str, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, client, None)
    with pytest.raises(ImportError, match=r"eventscope\[relay\]"):
        open_publisher(url)


@needs_rabbitmq
def test_a_closed_publisher_refuses_to_publish(rabbit: dict[str, str]) -> None:
    publisher = _open_amqp(rabbit)
    publisher.close()
    publisher.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        publisher.publish(_messages(1))


@pytest.mark.parametrize(
    ("port", "url"),
    [(NATS_PORT, "nats://127.0.0.1:{port}"), (AMQP_PORT, "amqp://guest:guest@127.0.0.1:{port}/")],
    ids=["nats", "amqp"],
)
def test_a_silent_broker_raises_at_open_within_the_timeout(
    port: int, url: str, proxy_to: Any
) -> None:
    if not _reachable(port):
        pytest.skip(f"no broker on 127.0.0.1:{port}")
    proxy = proxy_to(port)
    proxy.stalled.set()  # the connection opens, the handshake never completes
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"^cannot connect to "):
        open_publisher(url.format(port=proxy.port), timeout=1)
    assert time.monotonic() - started < 2.5


# --- brokers set up so that publishing cannot work -------------------------------------


@needs_nats
def test_a_jetstream_stream_that_takes_other_subjects_is_a_setup_error_in_one_line(
    jetstream: dict[str, str],
) -> None:
    async def add(js: Any) -> None:
        await js.add_stream(name=jetstream["stream"], subjects=[f"{jetstream['prefix']}x.>"])

    asyncio.run(_nats_admin(add))
    with pytest.raises(BrokerSetupError) as refused:
        _open_nats(jetstream)
    text = str(refused.value)
    assert "\n" not in text
    assert f"JetStream stream {jetstream['stream']!r} takes {jetstream['prefix']}x.>" in text
    assert f"not {jetstream['prefix']}.*.*" in text


@needs_nats
@pytest.mark.parametrize(
    ("subjects", "covered"),
    [("{p}.>", True), ("{p}.*.*", True), ("{p}.*.*.*", False), ("{p}.order.>", False)],
)
def test_a_jetstream_stream_that_covers_the_subjects_is_used_as_it_is(
    jetstream: dict[str, str], subjects: str, covered: bool, caplog: pytest.LogCaptureFixture
) -> None:
    subject = subjects.format(p=jetstream["prefix"])

    async def add(js: Any) -> None:
        await js.add_stream(name=jetstream["stream"], subjects=[subject], duplicate_window=10)

    asyncio.run(_nats_admin(add))
    caplog.set_level(logging.WARNING, logger="core.relay.publishers")
    if not covered:
        with pytest.raises(BrokerSetupError):
            _open_nats(jetstream)
        return
    with _open_nats(jetstream) as publisher:
        publisher.publish(_messages(3))
    assert _stream_state(jetstream).state.messages == 3
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "drops duplicates within 10 s only" in warning


@needs_rabbitmq
def test_an_exchange_of_another_type_is_a_setup_error_in_one_line(rabbit: dict[str, str]) -> None:
    async def declare() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.declare_exchange(
                rabbit["exchange"], aio_pika.ExchangeType.FANOUT, durable=True
            )

    asyncio.run(declare())
    with pytest.raises(BrokerSetupError) as refused:
        _open_amqp(rabbit)
    text = str(refused.value)
    assert "\n" not in text
    assert f"exchange {rabbit['exchange']!r} exists, but not as a durable topic exchange" in text
    assert "choose another --exchange" in text
