"""The rate-limit fixtures (tests/ratelimit_fixtures.py) for this folder's tests: a counter of
each kind (memory, database on a real SQLite file and a real PostgreSQL); ``backend`` follows
the kind here only, so the other tests keep theirs."""

from tests.ratelimit_fixtures import backend, kind, limiter

__all__ = ["backend", "kind", "limiter"]
