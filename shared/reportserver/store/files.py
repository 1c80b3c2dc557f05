"""Export files in S3: upload (multipart for large files), existence, and short-lived download links."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reportserver.store import aws

MULTIPART_THRESHOLD_BYTES = 64 * 1024 * 1024
MULTIPART_CHUNK_BYTES = 64 * 1024 * 1024


class S3FileStore:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def place(
        self, ticket_id: str, report_slug: str, created_at: datetime, extension: str, folder: str = "exports"
    ) -> tuple[str, str]:
        """(key, file name): one prefix per ticket, and a name that says which report and when."""
        name = f"{report_slug}-{created_at.strftime('%Y%m%d-%H%M%S')}.{extension}"
        return f"{folder}/{ticket_id}/{name}", name

    def delete(self, key: str) -> None:
        aws.s3().delete_object(Bucket=self._bucket, Key=key)

    def upload(self, path: Path, key: str, content_type: str) -> None:
        from boto3.s3.transfer import TransferConfig  # noqa: PLC0415 - only the worker uploads

        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD_BYTES, multipart_chunksize=MULTIPART_CHUNK_BYTES
        )
        aws.s3().upload_file(str(path), self._bucket, key, ExtraArgs={"ContentType": content_type}, Config=config)

    def exists(self, key: str) -> bool:
        try:
            aws.s3().head_object(Bucket=self._bucket, Key=key)
        except Exception as error:
            if aws.error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def read(self, key: str) -> bytes:
        """A file whole (a job run's attachment: at most a few MB)."""
        return bytes(aws.s3().get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def copy(self, source: str, target: str) -> None:
        """A copy of a file in the same bucket (a job's shared folder), made by S3 itself."""
        aws.s3().copy_object(Bucket=self._bucket, Key=target, CopySource={"Bucket": self._bucket, "Key": source})

    def download_url(self, key: str, file_name: str, content_type: str, expires_seconds: int) -> str:
        """A presigned GET signed now, with this function's current credentials, for a short time."""
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition(file_name),
        }
        url: str = aws.s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_seconds)
        return url


def content_disposition(file_name: str) -> str:
    ascii_name = file_name.encode("ascii", "replace").decode("ascii").replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"
