"""Sending alerts to the notifiers of alerts.yaml: a webhook gets one JSON POST per alert opened (and,
with `send_resolved`, one when it closes). Deliveries are stored with the alert, in the same
transaction, and retried with backoff until the receiver answers 2xx: an unreachable webhook delays
its notices, never loses them, and never holds the agent (sending runs on its own thread)."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from suanli.monitor.rules import Notifier
from suanli.store.monitoring import MonitorStore, alert_json

log = logging.getLogger("suanli.monitor")
POLL_S = 1.0
MAX_BACKOFF_S = 300.0


def backoff_s(tries: int) -> float:
    """5 s, 10 s, 20 s ... up to 5 minutes between tries."""
    return min(MAX_BACKOFF_S, 5.0 * 2 ** max(0, tries - 1))


def body(event: str, alert: dict) -> bytes:
    return json.dumps({"source": "suanli", "event": event, "alert": alert_json(alert)}).encode()


def post(notifier: Notifier, payload: bytes) -> None:
    """POST the payload; raises OSError (urllib's errors) unless the answer is 2xx."""
    request = urllib.request.Request(
        notifier.webhook,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "suanli", **notifier.headers},
    )
    with urllib.request.urlopen(request, timeout=notifier.timeout) as answer:
        answer.read(65536)


class Sender:
    """The thread that delivers what is due; `notifiers()` gives the ones configured now."""

    def __init__(self, db: MonitorStore, notifiers: Callable[[], list[Notifier]]) -> None:
        self.db = db
        self.notifiers = notifiers
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:  # a database hiccup: try again next round
                log.exception("sending alerts failed")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def send_due(self) -> int:
        """Try every delivery that is due; returns how many were delivered."""
        sent = 0
        notifiers = self.notifiers()
        for delivery, alert in self.db.due_deliveries():
            if self._stop.is_set():
                break
            index = delivery["notifier"]
            if index >= len(notifiers):
                self.db.delivered(delivery["id"], "the notifier is no longer configured", give_up=True)
                continue
            notifier = notifiers[index]
            try:
                post(notifier, body(delivery["event"], alert))
            except (OSError, ValueError) as e:
                tries = delivery["tries"] + 1
                why = _why(e)
                retry = time.time() + backoff_s(tries)
                self.db.delivered(delivery["id"], why, retry_at=retry)
                log.warning(
                    "alert %s not delivered to %s (try %d, again in %.0f s): %s",
                    alert["id"],
                    notifier.shown(),
                    tries,
                    backoff_s(tries),
                    why,
                )
                continue
            self.db.delivered(delivery["id"], None)
            sent += 1
        return sent


def _why(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)[:200]
    return f"{type(e).__name__}: {e}"[:200]
