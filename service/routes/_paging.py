"""Path parameters and keyset pagination shared by the routers (a page token is the last id of the previous
page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from api.schemas import INT32_MAX
from service.errors import InvalidArgumentError
from service.settings import Settings

# any integer is accepted: an id that cannot exist is answered like one that does not (404)
StudyId = Annotated[int, Path(description="study id")]
TrialId = Annotated[int, Path(description="trial id")]


def parse_page(page_token: str | None, page_size: int | None, settings: Settings) -> tuple[int | None, int]:
    after = None
    if page_token:
        try:
            after = int(page_token)
        except ValueError:
            after = -1
        if not 0 <= after <= INT32_MAX:
            raise InvalidArgumentError(f"malformed page_token {page_token!r}", field="page_token")
    size = page_size or settings.page_size_default
    if not 1 <= size <= settings.page_size_max:
        raise InvalidArgumentError(f"page_size must be in [1, {settings.page_size_max}]", field="page_size")
    return after, size


def next_token(ids: list[int], size: int) -> str | None:
    return str(ids[-1]) if len(ids) == size else None
