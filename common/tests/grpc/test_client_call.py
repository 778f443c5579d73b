"""`common.grpc.client.call`: a peer's answer, or its failure as the ApplicationError our
own client gets, against a real in-process server that answers each call with the
status code named in the request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from common.errors import ApplicationError, ErrorCode
from common.grpc.client import call, channel, close_channels

METHOD = "/test.Peer/Answer"


def _answer(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Answer b"fine" to b"OK", sleep on b"SLOW", else abort with the named status."""
    name = request.decode()
    if name == "OK":
        return b"fine"
    if name == "SLOW":
        time.sleep(1)
        return b"late"
    context.abort(grpc.StatusCode[name], f"refused: {name.lower()}")
    raise AssertionError("abort returned")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(_answer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Peer", {"Answer": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture(autouse=True)
def _fresh_channels() -> Iterator[None]:
    close_channels()
    yield
    close_channels()


def answer(target: str) -> Any:
    """The peer's method, bound to the shared channel (as a stub's method is)."""
    return channel(target).unary_unary(METHOD)


def test_an_answer_is_returned(target: str) -> None:
    assert call(answer(target), b"OK", timeout=2.0, peer="test") == b"fine"


def test_a_refusal_of_what_was_asked_is_passed_on(target: str) -> None:
    with pytest.raises(ApplicationError) as invalid:
        call(answer(target), b"INVALID_ARGUMENT", timeout=2.0, peer="test")
    with pytest.raises(ApplicationError) as missing:
        call(answer(target), b"NOT_FOUND", timeout=2.0, peer="test")

    assert invalid.value.code is ErrorCode.INVALID_INPUT
    assert invalid.value.message == "The test service refused: refused: invalid_argument"
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert missing.value.message == "refused: not_found"


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        # A refusal of us, not of what our client asked: our client can only retry.
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
    ],
)
def test_any_other_failure_is_503_try_again(target: str, code: grpc.StatusCode) -> None:
    with pytest.raises(ApplicationError) as raised:
        call(answer(target), code.name.encode(), timeout=2.0, peer="test")

    assert raised.value.code is ErrorCode.UNAVAILABLE
    assert raised.value.message == "The test service is not available right now; try again."
    assert raised.value.details == {"retry_after": 1}


def test_a_missed_deadline_is_503(target: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        call(answer(target), b"SLOW", timeout=0.05, peer="test")

    assert raised.value.code is ErrorCode.UNAVAILABLE


def test_an_unreachable_peer_is_503() -> None:
    nobody = "127.0.0.1:9"  # the discard port: nobody listens

    with pytest.raises(ApplicationError) as raised:
        call(answer(nobody), b"OK", timeout=1.0, peer="test")

    assert raised.value.code is ErrorCode.UNAVAILABLE
