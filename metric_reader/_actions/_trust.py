"""Trust: who may change a plugin file. Plugins are code, so a file or directory others
could change is refused, the way sshd refuses loose key files."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from ._result import describe

REMEDY = (
    "plugins are code: like sshd's key files, they and their directories must belong to "
    "root or the service's user and be writable only by their owner (chown, chmod go-w), "
    "or set PLUGIN_DIR_INSECURE=true for development"
)


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _read_only_mount(path: str) -> bool:
    """Whether ``path`` is on a file system mounted read-only: then no one can write it.

    Kubernetes mounts ConfigMap, Secret and projected volumes read-only into containers;
    the volume's own root directory is mode 0777 (1777 on tmpfs), harmless there.
    """
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _finding(path: str, st: os.stat_result, what: str) -> str | None:
    """Why someone other than root or us could change ``path``; None when no one can."""
    me = os.geteuid()
    if st.st_uid not in (0, me):
        owners = "root" if me == 0 else f"root or {_user(me)}, which runs the service"
        return f"{what} is owned by {_user(st.st_uid)}, not by {owners}"
    loose = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if loose and not _read_only_mount(path):
        who = {stat.S_IWGRP: "group-writable", stat.S_IWOTH: "world-writable"}.get(
            loose, "group- and world-writable"
        )
        return f"{what} is {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def dir_finding(directory: Path, real: str, st: os.stat_result) -> str | None:
    shown = str(directory) if real == str(directory) else f"{directory} (really {real})"
    found = _finding(real, st, f"PLUGIN_DIR {shown}")
    return None if found is None else f"{found}, so others could add or replace plugins"


def file_finding(entry: Path, real: str, st: os.stat_result, real_dir: str) -> str | None:
    """Why the file behind ``entry`` (``st``: its stat) could be changed by others.

    Symlinks are followed: the real file is checked, and so is every directory a symlink on
    the way lives in and every directory from the real file up to ``PLUGIN_DIR`` (outside
    ``PLUGIN_DIR``: the real file's own directory), since whoever can write a directory can
    replace what is in it. ``PLUGIN_DIR`` itself is checked on its own (:func:`dir_finding`).

    In a Kubernetes ConfigMap volume ``name.py -> ..data/name.py``, ``..data ->
    ..2024_01_01_...`` (mode 0755, made by kubelet's atomic writer) and the real file is
    mode 0644 (``defaultMode``), all owned by root: accepted. The volume root is 0777 but
    mounted read-only, which :func:`_finding` takes into account.
    """
    # A relative PLUGIN_DIR is no symlink: compare with the absolute path of the entry.
    followed = real != os.path.abspath(entry)
    what = f"the file {real} (where {entry.name} leads)" if followed else "the file"
    found = _finding(real, st, what)
    if found is not None:
        return found
    for directory in _directories_around(entry, real, real_dir):
        try:
            dir_st = os.stat(directory)
        except OSError as exc:
            return f"cannot check the directory {directory}: {describe(exc)}"
        found = _finding(directory, dir_st, f"the directory {directory} holding {entry.name}")
        if found is not None:
            return found
    return None


def _directories_around(entry: Path, real: str, real_dir: str) -> list[str]:
    """The directories whose writers could change what ``entry`` leads to."""
    found: list[str] = []
    hop = str(entry)
    for _ in range(40):  # the kernel's own limit on symlinks followed
        if not os.path.islink(hop):
            break
        where = os.path.realpath(os.path.dirname(hop))
        found.append(where)
        try:
            hop = os.path.join(where, os.readlink(hop))
        except OSError:
            break
    parent = os.path.dirname(real)
    if os.path.commonpath([parent, real_dir]) == real_dir:
        while parent != real_dir:
            found.append(parent)
            parent = os.path.dirname(parent)
    else:
        found.append(parent)
    return [d for d in dict.fromkeys(found) if d != real_dir]
