"""Received bytes kept at an fsspec URL (``CI_PIPELINE_RECEIVED_URL``: ``s3://bucket/prefix``,
``file:///shared/received``) instead of in the app database, content-addressed: one object per
SHA-256, written whole before the submission that names it is committed.
"""

from __future__ import annotations

import hashlib

import fsspec


def location(base_url: str, content_hash: str) -> str:
    """The object's URL: ``<base>/<sha[:2]>/<sha>`` (a prefix keeps listings short)."""
    return f"{base_url.rstrip('/')}/{content_hash[:2]}/{content_hash}"


def put(base_url: str, content: bytes) -> str:
    """Write the bytes (unless an object with their hash is there) and return their URL.

    Written under a temporary name and moved into place where the file system can move, so a
    failed write never leaves a partial object under the real name."""
    content_hash = hashlib.sha256(content).hexdigest()
    url = location(base_url, content_hash)
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path) and fs.size(path) == len(content):
        return url
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    partial = f"{path}.part"
    fs.pipe_file(partial, content)
    fs.mv(partial, path)
    return url


def get(url: str, content_hash: str) -> bytes:
    """The bytes at ``url``; OSError if they are missing or are not the ones hashed."""
    fs, path = fsspec.core.url_to_fs(url)
    content = bytes(fs.cat_file(path))
    if hashlib.sha256(content).hexdigest() != content_hash:
        raise OSError(f"the bytes at {url} do not match their SHA-256")
    return content
