"""A token-bucket rate limiter for the export API client.

Each client may make 10 requests per second with bursts of up to 20;
the server answers HTTP 429 beyond that, and three 429s in a row lock
the key for a minute. The limiter makes callers wait instead.
"""

import threading
import time


class TokenBucket:
    """Tokens refill at ``rate`` per second up to ``burst``; each request takes one."""

    def __init__(self, rate=10.0, burst=20):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def _refill(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self, timeout=None):
        """Wait for a token; False if none came within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                self._refill()
                if self.tokens >= 1:
                    self.tokens -= 1
                    return True
                wait = (1 - self.tokens) / self.rate
            if deadline is not None and time.monotonic() + wait > deadline:
                return False
            time.sleep(wait)


def retry_after(response):
    """Seconds to wait after a 429, from the Retry-After header (default 1)."""
    try:
        return float(response.headers.get("Retry-After", 1))
    except ValueError:
        return 1.0
