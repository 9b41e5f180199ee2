"""The RPC layer over real HTTP: URL forms, version negotiation, envelope, errors and auth."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

from .conftest import Api, running_server


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def basic(key: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def test_login_token_carries_what_the_clients_read(api: Api):
    c = claims(api.token)
    assert c["api_version"] == "2.26" and c["feature_set"] == "basic"
    assert c["identity"]["user"] and c["identity"]["company"] and c["exp"] > c["iat"]


def test_login_reads_expiration_from_the_query_string(server, api: Api):
    status, body = api.raw("GET", "/auth.login?expiration_sec=120", headers=basic(server.access_key, server.secret_key))
    assert status == 200
    c = claims(body["data"]["token"])
    assert c["exp"] - c["iat"] == 120


def test_envelope_on_success(api: Api):
    status, body = api.call("server.info", version="2.20")
    meta = body["meta"]
    assert status == 200 and meta["result_code"] == 200 and meta["result_subcode"] == 0
    assert meta["result_msg"] == "OK" and meta["error_stack"] is None and meta["error_data"] == {}
    assert len(meta["id"]) == 32 and meta["trx"] == meta["id"]
    assert meta["endpoint"] == {"name": "server.info", "requested_version": "2.20", "actual_version": "2.12"}
    assert body["data"]["api_version"] == "2.26"


@pytest.mark.parametrize("path", ["/server.info", "/server.info/", "/v2.13/server.info", "/v2.13/server.info/", "/v25/server.info"])
def test_accepted_url_forms(api: Api, path: str):
    status, body = api.raw("GET", path, headers={"Authorization": f"Bearer {api.token}"})
    if path.startswith("/v25"):  # major 25 is above the max: strict mode refuses it
        assert (status, body["meta"]["result_subcode"]) == (400, 0)
        assert "max. supported version is 2.26" in body["meta"]["result_msg"]
    else:
        assert status == 200, body


def test_no_version_means_the_max_and_the_header_says_which_served(api: Api):
    response = api.http.get("/server.info", headers={"Authorization": f"Bearer {api.token}"})
    assert response.json()["meta"]["endpoint"]["requested_version"] == "2.26"
    assert response.headers["x-api-version"] == "2.12"


@pytest.mark.parametrize("header", ["X-Api-Version", "X-ClearML-Api-Version", "X-Trains-Api-Version"])
def test_version_header_pins_when_the_path_has_none(api: Api, header: str):
    response = api.http.get("/server.info", headers={"Authorization": f"Bearer {api.token}", header: "2.9"})
    assert response.json()["meta"]["endpoint"] == {"name": "server.info", "requested_version": "2.9", "actual_version": "2.8"}


def test_the_path_version_wins_over_the_header(api: Api):
    response = api.http.get("/v2.1/server.info", headers={"Authorization": f"Bearer {api.token}", "X-Api-Version": "2.12"})
    assert response.json()["meta"]["endpoint"]["actual_version"] == "2.1"


@pytest.mark.parametrize(
    "path,code,sub,fragment",
    [
        ("/v2/server.info", 400, 0, "Invalid request path /v2/server.info"),
        ("/server.info.x", 400, 0, "Invalid request path"),
        ("/v2.05/server.info", 400, 2, "version=2.05"),
        ("/v2.23/server.nothing", 404, 0, "name server.nothing and version 2.23"),
        ("/v2.0/server.info", 404, 0, "name server.info and version 2.0"),
    ],
)
def test_path_and_version_errors(api: Api, path, code, sub, fragment):
    status, body = api.raw("GET", path, headers={"Authorization": f"Bearer {api.token}"})
    meta = body["meta"]
    assert (status, meta["result_code"], meta["result_subcode"]) == (code, code, sub)
    assert fragment in meta["result_msg"] and body["data"] == {}


def test_invalid_path_meta_has_no_endpoint(api: Api):
    _, body = api.raw("GET", "/not-an-endpoint")
    assert body["meta"]["endpoint"] == {"name": "", "requested_version": 1.0, "actual_version": None}


@pytest.mark.parametrize(
    "headers,sub",
    [
        ({}, 20),
        ({"Authorization": "Digest abc"}, 10),
        ({"Authorization": "Basic !!!not-base64"}, 21),
        ({"Authorization": "Basic " + base64.b64encode(b"NOKEY:nosecret").decode()}, 22),
        ({"Authorization": "Bearer not.a.jwt"}, 30),
    ],
)
def test_authentication_failures_are_401_with_their_subcode(api: Api, headers, sub):
    status, body = api.raw("GET", "/v2.20/server.info", headers=headers)
    assert (status, body["meta"]["result_subcode"]) == (401, sub), body["meta"]


def test_a_token_signed_with_another_secret_is_refused(api: Api):
    header, payload, _ = api.token.split(".")
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(b'x' * 32).decode().rstrip('=')}"
    status, body = api.raw("GET", "/server.info", headers={"Authorization": f"Bearer {forged}"})
    assert (status, body["meta"]["result_subcode"]) == (401, 30)


def test_a_token_with_another_algorithm_is_refused(api: Api):
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    _, payload, signature = api.token.split(".")
    status, _ = api.raw("GET", "/server.info", headers={"Authorization": f"Bearer {header}.{payload}.{signature}"})
    assert status == 401


def test_the_session_cookie_authenticates_without_a_header(server, api: Api):
    status, _ = api.raw("GET", "/server.info", headers={"Cookie": f"clearml_token_basic={api.token}"})
    assert status == 200


def test_malformed_json_is_a_bad_request(api: Api):
    status, body = api.raw("POST", "/v2.20/auth.login", content=b"{not json", headers={"Authorization": f"Bearer {api.token}"})
    assert (status, body["meta"]["result_subcode"]) == (400, 0) and "JSON" in body["meta"]["result_msg"]


def test_wrong_type_names_the_field(api: Api):
    status, body = api.call("auth.login", expiration_sec="soon")
    meta = body["meta"]
    assert (status, meta["result_subcode"]) == (400, 12)
    assert "expiration_sec" in meta["result_msg"] and meta["error_data"]["field"] == "expiration_sec"


def test_missing_required_field_names_it(api: Api):
    status, body = api.call("auth.revoke_credentials")
    assert (status, body["meta"]["result_subcode"]) == (400, 12)
    assert "missing required field 'access_key'" in body["meta"]["result_msg"]


def test_a_json_array_body_is_refused(api: Api):
    status, body = api.raw("POST", "/server.info", content=b"[1]", headers={"Authorization": f"Bearer {api.token}"})
    assert status == 400 and body["data"] == {}


def test_content_encoding_is_refused_in_plain_text(api: Api):
    response = api.http.post("/server.info", content=b"x", headers={"Content-Encoding": "gzip"})
    assert response.status_code == 415 and response.text.startswith("Content encoding is not supported")


def test_preflight_answers_without_auth(api: Api):
    response = api.http.options("/v2.23/tasks.get_all")
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"


def test_a_specd_action_without_handler_is_not_implemented(server, api: Api, monkeypatch):
    monkeypatch.delitem(server.app.rpc.handlers._keys, "server.info")  # the spec keeps it, no handler serves it
    status, body = api.call("server.info")
    assert (status, body["meta"]["result_code"], body["data"]) == (501, 501, {})
    assert "server.info" in body["meta"]["result_msg"]


def test_unexpected_failures_are_500_without_a_stack(server, api: Api, monkeypatch):
    async def broken(ctx, data):
        raise RuntimeError("secret internals")

    handlers = server.app.rpc.handlers
    monkeypatch.setitem(handlers._handlers["server.info"], min(handlers._handlers["server.info"]), broken)
    status, body = api.call("server.info")
    meta = body["meta"]
    assert (status, meta["result_subcode"]) == (500, 0) and meta["error_stack"] is None
    assert "secret internals" not in meta["result_msg"] and meta["id"] in meta["result_msg"]


def test_credentials_lifecycle(server, api: Api):
    created = api.ok("auth.create_credentials", label="ci")["credentials"]
    assert len(created["access_key"]) == 30 and created["label"] == "ci"
    listed = api.ok("auth.get_credentials")["credentials"]
    assert created["access_key"] in [c["access_key"] for c in listed]
    assert all("secret_key" not in c for c in listed)
    fresh = httpx.get(f"{server.url}/auth.login", headers=basic(created["access_key"], created["secret_key"]))
    assert fresh.status_code == 200
    assert api.ok("auth.revoke_credentials", access_key=created["access_key"]) == {"revoked": 1}
    refused = httpx.get(f"{server.url}/auth.login", headers=basic(created["access_key"], created["secret_key"]))
    assert (refused.status_code, refused.json()["meta"]["result_subcode"]) == (401, 22)


def test_logout_revokes_the_token(server):
    api = Api(server)
    try:
        assert api.call("server.info")[0] == 200
        assert api.ok("auth.logout") == {}
        status, body = api.call("server.info")
        assert (status, body["meta"]["result_subcode"]) == (401, 30)
    finally:
        api.close()


def test_a_body_over_the_limit_is_refused_before_it_is_read(tmp_path):
    with running_server(tmp_path, max_body_bytes=1000) as info:
        response = httpx.post(f"{info.url}/server.info", content=b"{" + b" " * 5000 + b"}")
        assert (response.status_code, response.json()["meta"]["result_code"]) == (413, 413)
