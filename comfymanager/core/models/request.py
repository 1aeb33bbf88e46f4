"""What a download asks for: a light module (no network stack), so the queue, the manager and
the UI can name requests without importing the download engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfymanager.core.errors import InvalidInput
from comfymanager.core.models.folders import canonical_folder, safe_relative_name


@dataclass(frozen=True)
class DownloadRequest:
    """A file wanted in the store. ``urls`` are mirrors of the same file, tried in order."""

    urls: tuple[str, ...]
    folder: str
    name: str
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        # the store layer takes any safe key: choices by a user are checked (strictly) before
        object.__setattr__(self, "folder", canonical_folder(self.folder, pack_folder=True))
        object.__setattr__(self, "name", safe_relative_name(self.name))
        if self.sha256:
            sha = self.sha256.strip().lower()
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise InvalidInput(
                    f"{self.sha256!r} is not a sha256 hash.",
                    "Give the 64 hexadecimal characters of the hash.",
                )
            object.__setattr__(self, "sha256", sha)
        if not self.urls:
            raise InvalidInput(f"No download address for {self.name}.", "Give at least one URL.")

    @property
    def target_key(self) -> str:
        return f"{self.folder}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "urls": list(self.urls),
            "folder": self.folder,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DownloadRequest:
        return cls(
            urls=tuple(data["urls"]),
            folder=data["folder"],
            name=data["name"],
            sha256=data.get("sha256"),
            size=data.get("size"),
        )
