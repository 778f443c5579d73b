"""common.apis: a selector's None becomes the one 404, anything else passes through."""

from __future__ import annotations

import pytest

from common.apis import get_or_404
from common.errors import ApplicationError, ErrorCode


@pytest.mark.parametrize("found", [{"id": 7}, 0, "", [], False])
def test_what_a_selector_found_passes_through_even_when_falsy(found: object) -> None:
    assert get_or_404(found, "No thing 7.") is found


def test_none_answers_not_found_with_the_message_in_the_one_error_shape() -> None:
    with pytest.raises(ApplicationError) as raised:
        get_or_404(None, "No order 42.")

    assert raised.value.http_status == 404
    assert raised.value.as_body() == {
        "error": {"code": ErrorCode.NOT_FOUND.value, "message": "No order 42.", "details": {}}
    }
