"""Every error status maps to its exception class and carries the server's message."""

from __future__ import annotations

import httpx
import longisynth_client as lc
import pytest

from tests.client.conftest import error_response, mock


@pytest.mark.parametrize(
    ("status", "type_", "cls"),
    [
        (401, "unauthorized", lc.AuthenticationError),
        (404, "not_found", lc.NotFoundError),
        (409, "job_not_finished", lc.ConflictError),
        (413, "payload_too_large", lc.PayloadTooLargeError),
        (415, "unsupported_media_type", lc.UnsupportedMediaTypeError),
        (422, "invalid_input", lc.UnprocessableError),
        (422, "prompt_not_understood", lc.PromptNotUnderstoodError),
        (422, "lesion_does_not_fit", lc.LesionDoesNotFitError),
        (429, "too_many_requests", lc.RateLimitError),
        (503, "service_unavailable", lc.ServiceUnavailableError),
        (500, "internal", lc.InternalServerError),
        (502, "bad_gateway", lc.InternalServerError),
        (418, "teapot", lc.APIStatusError),
    ],
)
def test_status_maps_to_class(
    status: int, type_: str, cls: type[lc.APIStatusError], sleeps: list[float]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error_response(status, type_, f"message for {status}", field="spec.diameter_mm")

    with lc.Client("http://x", transport=mock(handler)) as client, pytest.raises(cls) as info:
        client.get_job("abc")
    err = info.value
    assert type(err) is cls
    assert isinstance(err, lc.APIStatusError)
    assert isinstance(err, lc.LongisynthClientError)
    assert err.status_code == status
    assert err.error_type == type_
    assert err.message == f"message for {status}"
    assert err.field == "spec.diameter_mm"
    assert err.response.status_code == status
    assert f"message for {status}" in str(err)


def test_unknown_words_and_subclassing(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error_response(
            422, "prompt_not_understood", "did not understand", unknown_words=["blorp", "zap"]
        )

    with (
        lc.Client("http://x", transport=mock(handler)) as client,
        pytest.raises(lc.UnprocessableError) as info,
    ):
        client.generate_demo(prompt="blorp zap")
    assert isinstance(info.value, lc.PromptNotUnderstoodError)
    assert info.value.unknown_words == ["blorp", "zap"]
    assert "blorp, zap" in str(info.value)


def test_text_body_fallback(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="upstream proxy exploded\n")

    with (
        lc.Client("http://x", transport=mock(handler)) as client,
        pytest.raises(lc.InternalServerError) as info,
    ):
        client.health()
    assert info.value.message == "upstream proxy exploded"
    assert info.value.error_type is None
    assert info.value.status_code == 502


def test_empty_body_uses_reason_phrase(sleeps: list[float]) -> None:
    with (
        lc.Client("http://x", transport=mock(lambda r: httpx.Response(404))) as client,
        pytest.raises(lc.NotFoundError) as info,
    ):
        client.health()
    assert info.value.message == "Not Found"


def test_connection_and_timeout_errors(sleeps: list[float]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    with lc.Client("http://x", transport=mock(refuse), max_retries=0) as client:
        with pytest.raises(lc.APIConnectionError) as info:
            client.health()
        assert not isinstance(info.value, lc.APITimeoutError)
        assert info.value.request is not None and info.value.request.url.path == "/healthz"
    with lc.Client("http://x", transport=mock(slow), max_retries=0) as client:
        with pytest.raises(lc.APITimeoutError) as tinfo:
            client.health()
        assert isinstance(tinfo.value, lc.APIConnectionError)
        assert "too slow" in str(tinfo.value)
