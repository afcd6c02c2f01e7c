"""Landlock for the Cypher worker: defence in depth behind the read-only check.

After the worker has imported ladybug and opened the database, `restrict([graph folder])` makes
the process unable to open any file except for reading beneath that folder (every filesystem
right the kernel's Landlock ABI knows is handled; only read-file and read-dir are granted),
unable to bind or connect TCP sockets (ABI >= 4), and unable to signal processes or reach
abstract UNIX sockets outside itself (ABI >= 6). A restriction cannot be lifted, and it also
binds every process the worker might start.

Landlock needs Linux >= 5.13 built and booted with it (`lsm=...,landlock`), on an architecture
whose syscall numbers are known here. Elsewhere (older kernels, macOS, containers whose seccomp
filter blocks the calls) nothing is applied and `describe()` says so; the other layers (the
checker, the canonical re-render, the worker's own re-check, rlimits, timeouts and an empty
private working folder) still hold. See docs/security.md.
"""

from __future__ import annotations

import ctypes
import os
import platform

# landlock_create_ruleset, landlock_add_rule, landlock_restrict_self (the same on these arches)
_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446), "arm64": (444, 445, 446)}
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_FS_READ_FILE, _FS_READ_DIR = 1 << 2, 1 << 3
# all filesystem rights the ABI knows: ABI 1 has bits 0..12, 2 adds REFER, 3 TRUNCATE, 5 IOCTL_DEV
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_FS_ALL_NEWEST = (1 << 16) - 1  # ABI >= 5
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI >= 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI >= 6

NONE = "none (Landlock unavailable): checker + canonical re-render, worker re-check, rlimits, private empty folder"


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]  # fmt: skip


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall(number: int, *args) -> int:
    """The raw syscall's result; raises OSError with errno on failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 where Landlock cannot be used."""
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None or not platform.system() == "Linux":
        return 0
    try:
        return _syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):  # ENOSYS, EOPNOTSUPP (disabled at boot), EPERM (seccomp)
        return 0


def describe(abi: int | None = None) -> str:
    """What `restrict` applies with this ABI (by default: this kernel's), in one line."""
    abi = abi_version() if abi is None else abi
    if abi <= 0:
        return NONE
    parts = ["files: graph folder read-only", "network: denied" if abi >= 4 else "network: not restricted (ABI < 4)"]
    if abi >= 6:
        parts.append("signals, abstract sockets: scoped")
    return f"landlock ABI {abi} ({'; '.join(parts)})"


def _ruleset(abi: int) -> tuple[_RulesetAttr, int]:
    """The ruleset attribute for this ABI and the size to pass (older kernels know fewer fields)."""
    attr = _RulesetAttr(_FS_RIGHTS_BY_ABI.get(abi, _FS_ALL_NEWEST), 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL, 24
    return attr, size


def _allow_read_beneath(numbers, ruleset_fd: int, path: str) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = _PathBeneathAttr(_FS_READ_FILE | _FS_READ_DIR, fd)
        _syscall(numbers[1], ctypes.c_int(ruleset_fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                 ctypes.c_uint32(0))  # fmt: skip
    finally:
        os.close(fd)


def _thread_count() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def restrict(read_only_paths: list[str]) -> str:
    """Allow this process from now on only to read beneath `read_only_paths` (no writes anywhere,
    no TCP); returns `describe()` of what is in force, or NONE with the reason.

    Landlock binds the calling thread and the threads it starts afterwards, not threads that
    already run: call this while the process has a single thread (before opening the database,
    whose scheduler threads would otherwise stay unrestricted). With more threads nothing is applied."""
    abi = abi_version()
    if abi <= 0:
        return NONE
    threads = _thread_count()
    if threads != 1:
        return f"{NONE} [not applied: {threads} threads already run, Landlock would bind only this one]"
    numbers = _SYSCALLS[platform.machine()]
    attr, size = _ruleset(abi)
    try:
        ruleset_fd = _syscall(numbers[0], ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    except OSError as e:
        return f"{NONE} [landlock_create_ruleset failed: {e.strerror}]"
    try:
        for path in read_only_paths:
            _allow_read_beneath(numbers, ruleset_fd, path)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        _syscall(numbers[2], ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))
    except OSError as e:
        return f"{NONE} [Landlock failed: {e.strerror or e}]"
    finally:
        os.close(ruleset_fd)
    return describe(abi)
