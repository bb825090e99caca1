"""Process lifecycle state shared by the readiness probe and shutdown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lifecycle:
    #: True from SIGTERM on: /readyz answers 503 so the load balancer stops sending.
    draining: bool = False
