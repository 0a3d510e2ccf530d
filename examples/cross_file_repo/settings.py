"""Settings of the upload service."""

from dataclasses import dataclass


@dataclass
class UploadLimits:
    largest_upload_in_bytes: int = 50_000_000
    uploads_per_minute: int = 10


LIMITS = UploadLimits()
