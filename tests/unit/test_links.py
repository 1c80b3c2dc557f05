"""Links in mails: opened while kept and live, refused with the reason otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.errors import FileGone, NotFound
from reportserver.domain.links import DownloadLink, Links, link_hash, new_link_secret

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.kept: dict[str, DownloadLink] = {}

    def put_link(self, link: DownloadLink) -> None:
        self.kept[link.link_hash] = link

    def link(self, hashed: str) -> DownloadLink | None:
        return self.kept.get(hashed)

    def revoke_link(self, hashed: str) -> bool:
        return False


class Files:
    def __init__(self, present: bool = True) -> None:
        self.present = present
        self.signed: list[tuple[str, int]] = []

    def exists(self, key: str) -> bool:
        return self.present

    def download_url(self, key: str, file_name: str, content_type: str, expires_seconds: int) -> str:
        self.signed.append((key, expires_seconds))
        return f"https://bucket.s3.amazonaws.com/{key}?X-Amz-Expires={expires_seconds}"


def _links(
    expires: datetime = NOW + timedelta(days=1), revoked: bool = False, present: bool = True
) -> tuple[Links, str]:
    store, secret = Store(), new_link_secret()
    link = DownloadLink(
        link_hash=link_hash(secret), job_id=1, run_key="k", file_key="exports/t/f.csv", file_name="f.csv",
        content_type="text/csv", created_at=NOW, expires_at=expires, revoked=revoked,
    )  # fmt: skip
    store.put_link(link)
    return Links(store, Files(present), lambda: NOW), secret


def test_a_live_link_is_signed_anew_for_a_minute() -> None:
    links, secret = _links()
    assert links.open(secret) == "https://bucket.s3.amazonaws.com/exports/t/f.csv?X-Amz-Expires=60"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"expires": NOW}, "This link expired at 2026-12-03 12:00 UTC"),
        ({"revoked": True}, "This link was revoked"),
        ({"present": False}, "The file of this link has been deleted"),
    ],
)
def test_a_dead_link_is_gone_saying_why(changes: dict[str, object], reason: str) -> None:
    links, secret = _links(**changes)  # type: ignore[arg-type]
    with pytest.raises(FileGone) as gone:
        links.open(secret)
    assert gone.value.message == reason


@given(st.text(max_size=60))
def test_anything_but_an_issued_secret_opens_nothing(text: str) -> None:
    links, secret = _links()
    if text != secret:
        with pytest.raises(NotFound):
            links.open(text)
