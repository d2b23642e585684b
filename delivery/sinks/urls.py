"""Push URLs as they may be shown: the userinfo (`user:password@`) masked, and the parts the log redactor hides."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["masked_url", "url_secrets"]


def masked_url(url: str) -> str:
    """`url` with any userinfo replaced by `***`; for messages, the delivery table and logs, never for the request."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def url_secrets(url: str | None) -> list[str]:
    """The userinfo of `url` and its password, raw and decoded: values no log line may hold."""
    parts = urlsplit(url or "")
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    password = userinfo.partition(":")[2]
    return [v for v in dict.fromkeys((userinfo, unquote(userinfo), password, unquote(password))) if v]
