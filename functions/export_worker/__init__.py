"""The export worker: renders queued export tickets into files in S3."""
