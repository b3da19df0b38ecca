"""FileTokenStore: MCP tokens and client registrations kept in a JSON file.

For a CLI or a desktop agent that should not send its user to the browser on
every start. The file holds the tokens in plain text, as ``~/.ssh`` holds
keys: it is created with mode 0600 (its new directories 0700), a file that
others can read or write is refused, every change replaces the file
atomically (a temporary file in the same directory, flushed, then renamed: a
crash leaves the old file or the new one, never half of one), and changes
from several processes are serialized by an advisory lock beside it, each
re-reading the file first, so one process never drops another's entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ....core import errors
from .core import ClientInfo, OAuthTokens

__all__ = ["FileTokenStore"]

_VERSION = 1
_MAX_FILE = 1024 * 1024  # far more than any number of tokens needs; bounds memory
_T = TypeVar("_T")

if sys.platform != "win32":
    import fcntl


class FileTokenStore:
    """A :class:`TokenStore` in a JSON file, private to the user (mode 0600).

    Args:
        path: The file (``~`` is expanded); created with its directories on
            the first write.

    Raises:
        ConfigError: ``path`` is empty or not a path.

    Every method may raise SecurityError (the file or its directory is open
    to other users) or ConfigError (the file is not a token file, or larger
    than 1 MiB), naming the path.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise errors.ConfigError(f"path: must be a file path, got {path!r}")
        self.path = Path(path).expanduser()

    async def get_tokens(self, resource: str) -> OAuthTokens | None:
        """The tokens for an MCP server, or None."""
        entry = (await self._read()).get("tokens", {}).get(resource)
        return None if entry is None else self._tokens_from(resource, entry)

    async def set_tokens(self, resource: str, tokens: OAuthTokens | None) -> None:
        """Keep (or, with None, forget) the tokens for an MCP server."""
        value = None if tokens is None else _fields(tokens)
        await self._update("tokens", resource, value)

    async def get_client(self, issuer: str) -> ClientInfo | None:
        """The registration with an authorization server, or None."""
        entry = (await self._read()).get("clients", {}).get(issuer)
        return None if entry is None else self._client_from(issuer, entry)

    async def set_client(self, issuer: str, client: ClientInfo | None) -> None:
        """Keep (or, with None, forget) the registration with an authorization server."""
        value = None if client is None else _fields(client)
        await self._update("clients", issuer, value)

    def __repr__(self) -> str:
        return f"<FileTokenStore path={str(self.path)!r}>"

    # -- the file ----------------------------------------------------------------------

    async def _read(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._load)

    async def _update(self, section: str, key: str, value: dict[str, Any] | None) -> None:
        def change() -> None:
            try:
                with self._locked():
                    data = self._load()
                    entries = data.setdefault(section, {})
                    if value is None:
                        if entries.pop(key, None) is None:
                            return  # nothing to forget: the file stays as it is
                    else:
                        entries[key] = value
                    self._write(data)
            except OSError as exc:
                raise errors.ConfigError(
                    f"token file {self.path}: cannot write it: {exc.strerror or exc}"
                ) from exc

        await asyncio.to_thread(change)

    def _load(self) -> dict[str, Any]:
        """The file's content (empty when there is no file yet)."""
        try:
            # No symlink followed; no wait on a FIFO (refused below as not a regular file).
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return {"version": _VERSION, "tokens": {}, "clients": {}}
        except OSError as exc:
            raise errors.ConfigError(f"token file {self.path}: cannot open it: {exc}") from exc
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise errors.ConfigError(f"token file {self.path}: not a regular file")
            self._check_private(info, "file")
            raw = file.read(_MAX_FILE + 1)
        if len(raw) > _MAX_FILE:
            raise errors.ConfigError(f"token file {self.path}: larger than {_MAX_FILE} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise errors.ConfigError(
                f"token file {self.path}: not JSON ({type(exc).__name__}); delete it to start over"
            ) from None
        if (
            not isinstance(data, dict)
            or data.get("version") != _VERSION
            or not all(isinstance(data.get(part, {}), dict) for part in ("tokens", "clients"))
        ):
            raise errors.ConfigError(
                f"token file {self.path}: not a token file of version {_VERSION}; "
                "delete it to start over"
            )
        return data

    def _write(self, data: dict[str, Any]) -> None:
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_private(os.stat(directory), "directory")
        text = json.dumps(data, indent=1, sort_keys=True).encode()
        # mkstemp creates the file with mode 0600, in the same directory: the
        # rename below is then atomic and the tokens are never readable by others.
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        with contextlib.suppress(OSError):  # the rename is durable once the directory is
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the advisory lock beside the file (one writer at a time, across processes)."""
        if sys.platform == "win32":  # no advisory lock; the rename is still atomic
            yield
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _check_private(self, info: os.stat_result, what: str) -> None:
        if os.name == "nt":
            return  # no POSIX modes: the user profile's ACLs protect it
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or (
            what == "file" and info.st_mode & (stat.S_IRGRP | stat.S_IROTH)
        ):
            where = self.path if what == "file" else self.path.parent
            raise errors.SecurityError(
                f"token {what} {where} is open to other users (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); refused: chmod "
                f"{'600' if what == 'file' else 'go-w'} it, or use another path"
            )
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            where = self.path if what == "file" else self.path.parent
            raise errors.SecurityError(f"token {what} {where} belongs to another user; refused")

    def _tokens_from(self, resource: str, entry: Any) -> OAuthTokens:
        return self._entry(OAuthTokens, entry, f"the tokens for {resource}", ())

    def _client_from(self, issuer: str, entry: Any) -> ClientInfo:
        return self._entry(ClientInfo, entry, f"the client for {issuer}", ("redirect_uris",))

    def _entry(self, kind: Callable[..., _T], entry: Any, what: str, tuples: tuple[str, ...]) -> _T:
        try:
            if not isinstance(entry, dict):
                raise TypeError("not an object")
            fields = dict(entry)
            for name in tuples:
                if name in fields:
                    if not isinstance(fields[name], list):
                        raise TypeError(f"{name} is {type(fields[name]).__name__}")
                    fields[name] = tuple(fields[name])
            value = kind(**fields)
            _check_types(value)
            return value
        except (TypeError, ValueError) as exc:
            raise errors.ConfigError(
                f"token file {self.path}: {what} is damaged ({exc}); delete it to start over"
            ) from None


def _fields(value: OAuthTokens | ClientInfo) -> dict[str, Any]:
    fields = {name: getattr(value, name) for name in value.__dataclass_fields__}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


def _check_types(value: Any) -> None:
    """Refuse an entry whose values are not what the dataclass says (a hand-edited file)."""
    for name, field in value.__dataclass_fields__.items():
        item = getattr(value, name)
        expected = str(field.type)
        if item is None and "None" in expected:
            continue
        if name == "expires_at":
            ok = isinstance(item, int | float) and not isinstance(item, bool)
        elif name == "redirect_uris":
            ok = all(isinstance(uri, str) for uri in item)
        else:
            ok = isinstance(item, str)
        if not ok:
            raise TypeError(f"{name} is {type(item).__name__}")
