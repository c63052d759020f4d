"""The task layer: handles on asynchronous tasks and the pollers that decide when they ask."""

from .adaptive import AdaptivePoller
from .polling import BackoffPoller, FixedPoller, Poller, PollSubject
from .task import Task

__all__ = ["AdaptivePoller", "BackoffPoller", "FixedPoller", "PollSubject", "Poller", "Task"]
