"""Keep macOS from napping the app while it downloads (App Nap throttles a hidden app's timers
and network to a crawl). ``NSProcessInfo.beginActivityWithOptions:reason:`` through the
Objective-C runtime with ctypes; a no-op on other systems, or when the runtime cannot be loaded.

``BusyActivity`` holds at most one activity: ``set_busy(True)`` begins it, ``set_busy(False)``
ends it; the begin/end functions are injectable so the logic is tested everywhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# NSActivityUserInitiatedAllowingIdleSystemSleep: user-initiated work; the Mac may still sleep
NS_ACTIVITY_USER_INITIATED_ALLOWING_IDLE_SLEEP = 0x00FFFFFF & ~(1 << 20)
FOUNDATION = "/System/Library/Frameworks/Foundation.framework/Foundation"


def _objc() -> tuple[Any, Callable[..., Any]] | None:
    """The objc runtime and a typed ``objc_msgSend`` maker; None where there is none."""
    path = ctypes.util.find_library("objc")
    if not path:
        return None
    objc = ctypes.cdll.LoadLibrary(path)
    ctypes.cdll.LoadLibrary(FOUNDATION)
    objc.objc_getClass.restype = ctypes.c_void_p
    objc.objc_getClass.argtypes = [ctypes.c_char_p]
    objc.sel_registerName.restype = ctypes.c_void_p
    objc.sel_registerName.argtypes = [ctypes.c_char_p]

    def send(restype: Any, *argtypes: Any) -> Any:
        # objc_msgSend must be called through a prototype matching each method (arm64 ABI)
        proto = ctypes.CFUNCTYPE(restype, ctypes.c_void_p, ctypes.c_void_p, *argtypes)
        address = ctypes.cast(objc.objc_msgSend, ctypes.c_void_p).value
        if address is None:
            raise OSError("objc_msgSend not found")
        return proto(address)

    return objc, send


def begin_activity(reason: str, os_name: str | None = None) -> object | None:
    """Begin an App Nap opt-out on macOS; returns a token for ``end_activity`` (None elsewhere
    or on failure: the download still works, it may only be slower while hidden)."""
    if (os_name or sys.platform) != "darwin":
        return None
    try:
        found = _objc()
        if found is None:
            return None
        objc, send = found
        sel = objc.sel_registerName
        info = send(ctypes.c_void_p)(objc.objc_getClass(b"NSProcessInfo"), sel(b"processInfo"))
        text = send(ctypes.c_void_p, ctypes.c_char_p)(
            objc.objc_getClass(b"NSString"), sel(b"stringWithUTF8String:"), reason.encode()
        )
        activity = send(ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p)(
            info,
            sel(b"beginActivityWithOptions:reason:"),
            NS_ACTIVITY_USER_INITIATED_ALLOWING_IDLE_SLEEP,
            text,
        )
        send(ctypes.c_void_p)(activity, sel(b"retain"))
        return (info, activity)
    except (OSError, AttributeError, ValueError, TypeError) as exc:
        log.info("App Nap opt-out unavailable: %s", exc)
        return None


def end_activity(token: object | None) -> None:
    if token is None:
        return
    try:
        found = _objc()
        if found is None:
            return
        objc, send = found
        assert isinstance(token, tuple) and len(token) == 2
        info: Any = token[0]
        activity: Any = token[1]
        sel = objc.sel_registerName
        send(None, ctypes.c_void_p)(info, sel(b"endActivity:"), activity)
        send(None)(activity, sel(b"release"))
    except (OSError, AttributeError, ValueError, TypeError) as exc:
        log.info("ending the App Nap opt-out failed: %s", exc)


class BusyActivity:
    """One activity while busy, none while idle; thread-safe, idempotent."""

    def __init__(
        self,
        reason: str,
        begin: Callable[[str], object | None] = begin_activity,
        end: Callable[[object | None], None] = end_activity,
    ) -> None:
        self.reason = reason
        self._begin = begin
        self._end = end
        self._token: object | None = None
        self._busy = False
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._busy

    def set_busy(self, busy: bool) -> None:
        with self._lock:
            if busy == self._busy:
                return
            self._busy = busy
            if busy:
                self._token = self._begin(self.reason)
            else:
                token, self._token = self._token, None
                self._end(token)
