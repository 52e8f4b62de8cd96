"""The per-key limiter of the drop and reject logs (aaad/radius/protocol.py), on a
task.Clock: no socket, no database."""

from __future__ import annotations

import logging

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from aaad.radius import protocol


class RateLimitedLogTests(SynchronousTestCase):
    """The per-key limiter of the drop and reject logs, on a task.Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.logger = logging.getLogger("tests.rate_limited")
        self.limited = protocol.RateLimitedLog(self.logger, reactor=self.clock, interval_s=60,
                                               level=logging.INFO, max_keys=100,
                                               closing="%r: %d more")

    def test_one_line_per_key_per_interval_then_the_count(self) -> None:
        with self.assertLogs(self.logger, "INFO") as logs:
            self.assertTrue(self.limited.log("bob", "reject %s", "bob"))
            self.clock.advance(30)
            self.assertFalse(self.limited.log("bob", "reject %s", "bob"))
            self.assertTrue(self.limited.log("eve", "reject %s", "eve"))
            self.clock.advance(30)
            self.assertTrue(self.limited.log("bob", "reject %s", "bob"))
        self.assertEqual([r.getMessage() for r in logs.records],
                         ["reject bob", "reject eve", "reject bob (1 similar suppressed)"])
        self.assertEqual({r.levelno for r in logs.records}, {logging.INFO})

    def test_a_spray_of_new_keys_keeps_memory_bounded(self) -> None:
        with self.assertLogs(self.logger, "INFO") as logs:
            for i in range(5000):
                self.limited.log(f"user{i}", "reject")
                self.limited.log(f"user{i}", "reject")     # held back, counted
                self.assertLessEqual(len(self.limited), 100)
        # Each key pushed out with a count left says so once: no count is lost.
        self.assertEqual(len(logs.records), 5000 + 4900)
        self.assertEqual([r.getMessage() for r in logs.records[-2:]],
                         ["'user4899': 1 more", "reject"])

    def test_keys_are_forgotten_after_their_interval(self) -> None:
        with self.assertLogs(self.logger, "INFO") as logs:
            for i in range(50):
                self.limited.log(f"user{i}", "reject")
            self.limited.log("user7", "reject")
            self.clock.advance(60)
            self.limited.log("late", "reject")
        self.assertEqual(len(self.limited), 1)
        self.assertEqual([r.getMessage() for r in logs.records[50:]],
                         ["'user7': 1 more", "reject"])
