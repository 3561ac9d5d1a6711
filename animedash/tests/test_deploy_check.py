from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k9#Vf2!qLx7$Rw0@Zp4^Tn8&Hs3*Jm6(Bc1)Yd5-Ge9+Ua2=Oi7~El4",
    "ALLOWED_HOSTS": "animedash.example.org",
}


def test_check_deploy_is_clean_under_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in {"SECURE_SSL_REDIRECT", "DEBUG"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**env, **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
