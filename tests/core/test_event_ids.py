"""Event ids: time-ordered UUIDv7s, unique within a process and across a fork."""

from __future__ import annotations

import os
import uuid

from core.events import new_event_id


def test_ids_are_uuid7_and_strictly_increasing() -> None:
    ids = [new_event_id() for _ in range(5000)]  # more than one pool of random bytes
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(value).version == 7 for value in ids)
    randoms = {value[-12:] for value in ids}
    assert len(randoms) == len(ids)  # the random parts differ too


def test_a_forked_child_does_not_reuse_its_parents_random_bits() -> None:
    new_event_id()  # the parent's pool of random bytes is filled
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, "".join(new_event_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(child, 0)
    in_child = [text[n : n + 36] for n in range(0, len(text), 36)]
    in_parent = [new_event_id() for _ in range(3)]
    assert len(in_child) == 3
    # The last 62 bits are random: the child's must not repeat the parent's next ones.
    assert {value[19:] for value in in_child}.isdisjoint(value[19:] for value in in_parent)
