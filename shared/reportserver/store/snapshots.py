"""Snapshot files in S3 (under snapshots/ in the stack's bucket): put and deleted by the refresh worker,
and copied once per container to its disk by the functions that read reports."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from reportserver.domain.errors import SourceUnavailable
from reportserver.domain.snapshots import Snapshot
from reportserver.store import aws
from reportserver.store.refreshes import DynamoRefreshStore
from reportserver.store.ttl_cache import TtlCache

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.sqlite3"
_MISSING = ("404", "NoSuchKey", "NotFound")


class S3SnapshotFiles:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def upload(self, path: Path, key: str) -> None:
        aws.s3().upload_file(str(path), self._bucket, key, ExtraArgs={"ContentType": CONTENT_TYPE})

    def delete(self, key: str) -> None:
        aws.s3().delete_object(Bucket=self._bucket, Key=key)


class _Gone(Exception):
    """The snapshot's file is no longer in S3 (a newer snapshot replaced it)."""


class S3SnapshotCopies:
    """A model's current snapshot, as a warm container knows it (for `ttl_seconds`, as it knows the
    catalog), and its file on this container's disk: downloaded the first time, kept under the
    snapshot's refresh id (so a new snapshot is a new file), the model's older copies removed."""

    def __init__(self, catalog_table: str, bucket: str, folder: Path, ttl_seconds: float) -> None:
        self._store = DynamoRefreshStore(catalog_table)
        self._bucket = bucket
        # A folder of this container's own: Lambda gives each container its /tmp, the local stack shares one.
        self._folder = folder / f"{os.getpid()}-{secrets.token_hex(4)}"
        self._pointers: TtlCache[Snapshot] = TtlCache(ttl_seconds)

    def current(self, model_id: str) -> tuple[Snapshot, str] | None:
        snapshot = self._pointers.get_or_load(model_id, lambda: self._store.snapshot(model_id))
        if snapshot is None:
            return None
        try:
            return snapshot, self._copy(snapshot)
        except _Gone:
            # Replaced since this container read which one is current: read it again, once.
            self._pointers.forget(model_id)
            fresh = self._pointers.get_or_load(model_id, lambda: self._store.snapshot(model_id))
            if fresh is None:
                return None
            try:
                return fresh, self._copy(fresh)
            except _Gone:
                log.error("snapshot file missing", extra={"model": model_id, "key": fresh.key})
                raise SourceUnavailable(
                    f"The snapshot of data model {model_id} is missing its file: refresh the data model"
                ) from None

    def _copy(self, snapshot: Snapshot) -> str:
        folder = self._folder / snapshot.model_id
        path = folder / f"{snapshot.refresh_id}.sqlite"
        if path.exists():
            return str(path)
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        try:
            aws.s3().download_file(self._bucket, snapshot.key, str(partial))
        except Exception as error:
            partial.unlink(missing_ok=True)
            if aws.error_code(error) in _MISSING:
                raise _Gone from None
            raise
        if partial.stat().st_size != snapshot.bytes:
            partial.unlink(missing_ok=True)
            raise SourceUnavailable(f"The snapshot of data model {snapshot.model_id} did not download whole")
        partial.replace(path)
        for older in folder.iterdir():
            if older != path:
                older.unlink(missing_ok=True)
        log.info("snapshot copied", extra={"model": snapshot.model_id, "bytes": snapshot.bytes})
        return str(path)
