from __future__ import annotations

from devtools import checkservices


def test_passes_when_postgres_and_redis_answer(monkeypatch, capsys):
    assert checkservices.main() == 0
    assert capsys.readouterr().out == ""


def test_names_postgres_and_how_to_start_it_when_unreachable(monkeypatch, capsys):
    monkeypatch.setenv("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:1/animedash")
    assert checkservices.main() == 1
    out = capsys.readouterr().out
    assert out.startswith("PostgreSQL is unreachable at postgres://postgres@127.0.0.1:1/animedash")
    assert "pg_ctlcluster" in out
    assert len(out.strip().splitlines()) == 1


def test_names_redis_and_how_to_start_it_when_unreachable(monkeypatch, capsys):
    monkeypatch.setenv("TEST_REDIS_URL", "redis://127.0.0.1:1/0")
    assert checkservices.main() == 1
    out = capsys.readouterr().out
    assert out.startswith("Redis is unreachable at redis://127.0.0.1:1/0")
    assert "redis-server --daemonize yes" in out
