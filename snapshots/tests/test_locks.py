from __future__ import annotations

from snapshots.locks import feed_lock


def test_a_feed_lock_is_exclusive_through_redis():
    with feed_lock("top") as first, feed_lock("top") as second, feed_lock("airing") as other_feed:
        assert (first, second, other_feed) == (True, False, True)
    with feed_lock("top") as again:
        assert again, "released on exit"


def test_the_lock_expires_after_its_ttl(settings):
    import time

    with feed_lock("movies", ttl=1) as first:
        assert first
        time.sleep(1.2)  # the holder was "killed": its TTL ran out
        with feed_lock("movies") as second:
            assert second


def test_the_lock_falls_back_to_the_process_when_redis_is_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with feed_lock("top") as first, feed_lock("top") as second:
        assert (first, second) == (True, False)
    with feed_lock("top") as again:
        assert again


def test_the_lock_is_in_process_without_redis(settings):
    settings.REDIS_URL = ""
    with feed_lock("season") as first, feed_lock("season") as second:
        assert (first, second) == (True, False)
