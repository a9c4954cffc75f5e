"""The web app's generation queue, per user: a cap on each user's waiting and running requests, and requests
whose client has gone away dropped before they run.

Gradio keeps one queue for the whole app (``max_size`` in :mod:`studio.web`). Without a cap per user one
account could fill it and every other user would get "Queue is full". :meth:`UserQueue.admit` runs in the
Generate form's validator, which Gradio calls when a request joins the queue (before it is added), so a user
over ``Settings.max_queued_per_user`` is told at once and nothing of theirs is queued; other users' requests
are not counted against them.

A request that joined but whose client no longer reads its results (the page was closed, or a script never
opened the result stream) should not cost the GPU anything. :meth:`UserQueue.client_gone` says so: Gradio
marks an event dead when its result stream closes, and a client that reads its stream takes the messages
Gradio queues for it (the "process starts" message) within moments; messages left unread for
``LISTEN_GRACE_S`` mean nobody is reading. The Generate handlers check it before the run starts and at
every denoising step (a gone client cancels the run between steps: images finished before are kept, as with
Cancel).

This reads Gradio 6's queue (``Queue.event_queue_per_concurrency_id``, ``active_jobs``,
``pending_messages_per_session``; ``Event.username``, ``request``, ``alive``); the tests run against a real
server, so a Gradio upgrade that changes them fails there.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from gradio.context import LocalContext

#: the concurrency id of the events that use the GPU (generate, CFG sweep, regenerate)
GPU = "gpu"
#: how long a client may take to read the messages queued for it before it counts as gone
LISTEN_GRACE_S = 3.0
#: how long a request admitted by the validator may take to appear in Gradio's queue
ADMIT_GRACE_S = 30.0


@dataclass
class _Admitted:
    """Requests the validator let in that Gradio has not queued yet (by the join request's identity)."""

    requests: dict[int, tuple[Any, float]] = field(default_factory=dict)


#: (Gradio queue, user) → requests admitted but not queued yet: shared by every tab's UserQueue of an app
_ADMITTED: dict[tuple[int, str], _Admitted] = {}
_LOCK = threading.Lock()


class UserQueue:
    """Counts each user's GPU requests in Gradio's queue (see the module docstring); thread-safe. Each tab
    with GPU events has one; they share what they admitted (per Gradio queue), so the cap is per user and
    app, whichever tab a request comes from."""

    def __init__(self, limit: int, concurrency_id: str = GPU) -> None:
        self.limit = limit
        self.concurrency_id = concurrency_id

    def admit(self, request: gr.Request) -> str | None:
        """Let one more request of the caller in (None), or say why not (the user has ``limit`` already)."""
        queue = _queue(request)
        user = str(getattr(request, "username", "") or "")
        join = getattr(request, "request", None)
        if queue is None or not user or join is None:
            return None  # not through the queue (a direct call): nothing to count
        with _LOCK:
            now = time.monotonic()
            events = self._events_of(queue, user)
            queued = {id(getattr(event, "request", None)) for event in events}
            admitted = _ADMITTED.setdefault((id(queue), user), _Admitted()).requests
            for key, (_, since) in list(admitted.items()):
                if key in queued or now - since > ADMIT_GRACE_S:
                    del admitted[key]  # queued now (counted there), or never queued
            count = len(events) + len(admitted)
            if count >= self.limit:
                return (
                    f"you already have {count} generation request{'s' if count != 1 else ''} waiting or "
                    f"running (at most {self.limit} at a time): wait for one to finish, then try again"
                )
            admitted[id(join)] = (join, now)
            return None

    def started(self, request: gr.Request) -> None:
        """The handler of an admitted request started (it is counted in Gradio's queue from now on)."""
        join = getattr(request, "request", None)
        user = str(getattr(request, "username", "") or "")
        with _LOCK:
            entry = _ADMITTED.get((id(_queue(request)), user))
            if entry is not None:
                entry.requests.pop(id(join), None)

    def _events_of(self, queue: Any, user: str) -> list[Any]:
        """The user's GPU events in Gradio's queue, waiting or running."""
        waiting = [e for q in list(queue.event_queue_per_concurrency_id.values()) for e in list(q.queue)]
        running = [e for job in list(queue.active_jobs) if job for e in list(job)]
        return [
            e
            for e in waiting + running
            if e.username == user and getattr(e.fn, "concurrency_id", None) == self.concurrency_id
        ]


def client_gone(request: gr.Request | None, wait_s: float = LISTEN_GRACE_S) -> bool:
    """Whether the client of the running event has gone away: its result stream closed (Gradio marked the
    event dead or dropped the session's messages), or, with ``wait_s`` > 0, the messages queued for it stay
    unread that long (nobody reads the stream). ``wait_s=0``: only the first two, at once (between steps)."""
    queue = _queue(request)
    session = str(getattr(request, "session_hash", "") or "")
    if queue is None or not session:
        return False  # not a queued event: nothing to tell
    event = _current_event(queue)
    if event is not None and not event.alive:
        return True
    deadline = time.monotonic() + wait_s
    while True:
        messages = queue.pending_messages_per_session.get(session)
        if messages is None:
            return True  # the stream ended and Gradio dropped the session's messages
        if wait_s <= 0 or messages.qsize() == 0:
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def _current_event(queue: Any) -> Any:
    """The Gradio event this handler runs for (None outside one)."""
    event_id = LocalContext.event_id.get(None)
    if not event_id:
        return None
    for job in list(queue.active_jobs):
        for event in list(job or ()):
            if event._id == event_id:
                return event
    return None


def _queue(request: gr.Request | None) -> Any:
    """Gradio's queue of the app serving ``request`` (None when there is none)."""
    blocks = LocalContext.blocks.get(None)
    if blocks is None:
        app = getattr(getattr(request, "request", None), "app", None)
        get_blocks = getattr(app, "get_blocks", None)
        blocks = get_blocks() if callable(get_blocks) else None
    return getattr(blocks, "_queue", None)
