"""Long-lived API tokens: issued over RPC or by `specgate token create`, accepted as Bearer, stored hashed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx


def test_rpc_issued_token_authenticates_bearer_calls(api, server) -> None:
    status, body = api.call("auth.create_api_token", label="ci")
    assert status == 200, body
    token = body["data"]["token"]
    assert token.startswith("sgt_")
    r = httpx.post(f"{server.url}/users.get_current_user", json={}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["user"]["company"]["id"]
    r = httpx.post(f"{server.url}/users.get_current_user", json={}, headers={"Authorization": f"Bearer {token}x"})
    assert r.status_code == 401


def test_cli_prints_a_token_for_the_store_it_is_pointed_at(server) -> None:
    env = {**os.environ, "SPECGATE_DATA_DIR": str(server.data_dir), "SPECGATE_ACCESS_KEY": server.access_key,
           "SPECGATE_SECRET_KEY": server.secret_key}  # fmt: skip
    exe = Path(sys.executable).with_name("specgate")
    done = subprocess.run([str(exe), "token", "create", "--label", "cli"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    r = httpx.post(f"{server.url}/users.get_current_user", json={}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    bad = subprocess.run([str(exe), "token", "create", "--user", "nobody"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "nobody" not in bad.stdout
