"""Links in mails (issue 10's `url` delivery, and files too big to attach): they point to the service,
never to S3. A presigned S3 URL dies with the credentials of the function that signed it (a Lambda role's
session lasts hours, not the days a mail is kept), so a mail carries `<service>/api/links/<secret>`
instead, and each click is answered with a redirect to a link presigned at that moment.

The secret is 256 random bits; only its SHA-256 is stored, with the file it opens, when it stops working
and whether it was revoked (`DELETE /api/jobs/jobresults/{generatedDocumentId}/link`). It cannot be
guessed, changed to open another file, or read back from the table.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import msgspec

from reportserver.domain.errors import FileGone, NotFound

LINK_PREFIX = "rl_"
_LINK = re.compile(r"^rl_[A-Za-z0-9_-]{43}$")
REDIRECT_SECONDS = 60  # the presigned link a click is sent to: used at once, so short


class DownloadLink(msgspec.Struct, kw_only=True):
    link_hash: str  # SHA-256 of the secret, hex
    job_id: int
    run_key: str
    file_key: str
    file_name: str
    content_type: str
    created_at: datetime
    expires_at: datetime
    revoked: bool = False


class LinkStore(Protocol):
    def put_link(self, link: DownloadLink) -> None: ...

    def link(self, link_hash: str) -> DownloadLink | None: ...

    def revoke_link(self, link_hash: str) -> bool:
        """Mark it revoked; False when there is no such link."""


class FilePresigner(Protocol):
    def exists(self, key: str) -> bool: ...

    def download_url(self, key: str, file_name: str, content_type: str, expires_seconds: int) -> str: ...


def new_link_secret() -> str:
    return LINK_PREFIX + secrets.token_urlsafe(32)


def link_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def link_url(service_url: str, secret: str) -> str:
    return f"{service_url.rstrip('/')}/api/links/{secret}"


@dataclass
class Links:
    """`GET /api/links/{link}`: a link from a mail, opened."""

    store: LinkStore
    files: FilePresigner
    clock: Callable[[], datetime]
    job_exists: Callable[[int], bool] = lambda _job_id: True  # a deleted job's links open nothing

    def open(self, secret: str) -> str:
        """The file's URL, presigned now for `REDIRECT_SECONDS`. An unknown link is 404; one expired,
        revoked or whose file is gone is 410, saying which."""
        if not _LINK.fullmatch(secret):
            raise NotFound("No such link")
        link = self.store.link(link_hash(secret))
        if link is None:
            raise NotFound("No such link")
        if link.revoked:
            raise FileGone("This link was revoked")
        if link.expires_at <= self.clock():
            raise FileGone(f"This link expired at {link.expires_at:%Y-%m-%d %H:%M} UTC")
        if link.job_id != 0 and not self.job_exists(link.job_id):  # 0: a report mailed on request
            raise FileGone("The job of this link was deleted")
        if not self.files.exists(link.file_key):
            raise FileGone("The file of this link has been deleted")
        return self.files.download_url(link.file_key, link.file_name, link.content_type, REDIRECT_SECONDS)
