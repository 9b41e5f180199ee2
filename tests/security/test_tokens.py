"""Authentication refusals: forged, expired, tampered and revoked credentials get ClearML's 401 with the
right subcode in the ``{meta, data}`` envelope over RPC (contract §3.1, §4.2), and a 401 in each REST
dialect's own error shape, whichever way the dialect carries them (Bearer, ``Token``, bare header, Basic,
CVAT session cookie). Every forgery is also checked to be a forgery of something that works: the genuine
token it started from is accepted on the same route."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Callable

import pytest

from .conftest import AUTH_SECRET, Tenant, add_tenant, basic


@pytest.fixture(scope="module")
def tenant(server):
    t = add_tenant(server, "gamma")
    yield t
    t.close()


@pytest.fixture(scope="module")
def other(server):
    t = add_tenant(server, "delta")
    yield t
    t.close()


# --- crafting tokens ----------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload)), signature


def sign(header: dict, claims: dict | bytes, secret: bytes = AUTH_SECRET.encode(), digest=hashlib.sha256) -> str:
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    return f"{signing}.{b64(hmac.new(secret, signing.encode(), digest).digest())}"


HS256 = {"alg": "HS256", "typ": "JWT"}


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


def _with(claims: dict, **changes) -> dict:
    return {**claims, **changes}


def _none(alg: str) -> Callable[[str, dict], str]:
    return lambda token, c: f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{b64(json.dumps(c).encode())}."


# each: (genuine token, its claims, the other tenant's company) -> a token that must be refused
FORGERIES: dict[str, Callable[[str, dict, str], str]] = {
    "expired": lambda t, c, o: sign(HS256, _with(c, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
    "expired a second ago": lambda t, c, o: sign(HS256, _with(c, exp=int(time.time()) - 1)),
    "payload: other company, old signature": lambda t, c, o: (
        f"{t.split('.')[0]}.{b64(json.dumps(_with(c, identity={**c['identity'], 'company': o})).encode())}.{t.split('.')[2]}"
    ),
    "payload: role root, old signature": lambda t, c, o: (
        f"{t.split('.')[0]}.{b64(json.dumps(_with(c, identity={**c['identity'], 'role': 'root'})).encode())}.{t.split('.')[2]}"
    ),
    "payload: later exp, old signature": lambda t, c, o: (
        f"{t.split('.')[0]}.{b64(json.dumps(_with(c, exp=c['exp'] + 10**6)).encode())}.{t.split('.')[2]}"
    ),
    "signature changed": lambda t, c, o: _flip(t, len(t) - 10),
    "signature removed": lambda t, c, o: t.rsplit(".", 1)[0] + ".",
    "signature segment missing": lambda t, c, o: t.rsplit(".", 1)[0],
    "truncated at the end": lambda t, c, o: t[:-5],
    "truncated in half": lambda t, c, o: t[: len(t) // 2],
    "extra segment": lambda t, c, o: t + ".AAAA",
    "alg none": lambda t, c, o: _none("none")(t, c),
    "alg None": lambda t, c, o: _none("None")(t, c),
    "alg NONE": lambda t, c, o: _none("NONE")(t, c),
    "no alg, right HS256 signature": lambda t, c, o: sign({"typ": "JWT"}, c),
    "alg HS512 signed with the secret": lambda t, c, o: sign({"alg": "HS512", "typ": "JWT"}, c, digest=hashlib.sha512),
    "alg HS384 signed with the secret": lambda t, c, o: sign({"alg": "HS384", "typ": "JWT"}, c, digest=hashlib.sha384),
    "alg RS256 with an HMAC signature": lambda t, c, o: sign({"alg": "RS256", "typ": "JWT"}, c),
    "alg hs256 (lower case)": lambda t, c, o: sign({"alg": "hs256", "typ": "JWT"}, c),
    "signed with another secret": lambda t, c, o: sign(HS256, c, secret=b"not-the-server-secret"),
    "signed with an empty secret": lambda t, c, o: sign(HS256, c, secret=b""),
    "other company, another secret": lambda t, c, o: sign(HS256, _with(c, identity={**c["identity"], "company": o}),
                                                          secret=b"guess"),  # fmt: skip
    "payload not JSON, right signature": lambda t, c, o: sign(HS256, b"not json"),
    "payload a list, right signature": lambda t, c, o: sign(HS256, b"[1, 2]"),
    "no identity, right signature": lambda t, c, o: sign(HS256, {k: v for k, v in c.items() if k != "identity"}),
    "no exp, right signature": lambda t, c, o: sign(HS256, {k: v for k, v in c.items() if k != "exp"}),
    "header not JSON": lambda t, c, o: b64(b"{nope") + "." + t.split(".", 1)[1],
    "garbage": lambda t, c, o: "x.y.z",
    "unknown API token": lambda t, c, o: "sgt_" + "A" * 43,
}


# --- the surfaces a token is accepted on, each with how its refusal looks -------------------------------


def _rpc(tenant: Tenant, headers: dict, endpoint: str = "users.get_current_user") -> tuple[int, dict]:
    r = tenant.http.post(f"/v2.23/{endpoint}", json={}, headers=headers)
    tenant.http.cookies.clear()
    return r.status_code, r.json()


def _rest(tenant: Tenant, method: str, path: str, headers: dict) -> tuple[int, dict]:
    r = tenant.http.request(method, path, headers=headers)
    tenant.http.cookies.clear()
    return r.status_code, (r.json() if r.content else {})


SURFACES: dict[str, Callable[[Tenant, str], tuple[int, dict]]] = {
    "rpc bearer": lambda t, token: _rpc(t, {"Authorization": f"Bearer {token}"}),
    "rpc cookie": lambda t, token: _rpc(t, {"Cookie": f"clearml_token_basic={token}"}),
    # the SDK refreshes a token through auth.login with it: a bad one must not buy a fresh one
    "rpc login": lambda t, token: _rpc(t, {"Authorization": f"Bearer {token}"}, "auth.login"),
    # an asynchronous call is authenticated before its 202
    "rpc async": lambda t, token: _rpc(t, {"Authorization": f"Bearer {token}", "X-Api-Async": "1"}),
    "cvat bearer": lambda t, token: _rest(t, "GET", "/api/tasks", {"Authorization": f"Bearer {token}"}),
    "cvat token": lambda t, token: _rest(t, "GET", "/api/tasks", {"Authorization": f"Token {token}"}),
    "cvat session": lambda t, token: _rest(t, "GET", "/api/tasks", {"Cookie": f"sessionid={token}"}),
    "qarnot raw": lambda t, token: _rest(t, "GET", "/tasks", {"Authorization": token} if token else {}),
    "qarnot bearer": lambda t, token: _rest(t, "GET", "/jobs", {"Authorization": f"Bearer {token}"}),
    "datarobot token": lambda t, token: _rest(t, "GET", "/api/v2/customTasks/", {"Authorization": f"Token {token}"}),
}


def refused(surface: str, answer: tuple[int, dict], subcodes: tuple[int, ...] = (30,)) -> None:
    """401; over RPC with one of ``subcodes`` in a ClearML envelope whose ``data`` is {}; over REST in the
    dialect's error shape."""
    status, body = answer
    assert status == 401, answer
    if surface.startswith("rpc"):
        meta = body["meta"]
        assert (meta["result_code"], body["data"]) == (401, {}) and meta["result_subcode"] in subcodes, meta
        assert meta["endpoint"]["name"] in ("users.get_current_user", "auth.login") and meta["error_stack"] is None
    elif surface.startswith("cvat"):
        assert set(body) == {"detail"}, body
    elif surface.startswith("datarobot"):
        assert set(body) == {"message", "errors"}, body
    else:
        assert set(body) == {"message"}, body


def accepted(surface: str, answer: tuple[int, dict]) -> None:
    assert answer[0] == (202 if surface == "rpc async" else 200), (surface, answer)


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_or_expired_tokens_are_refused(tenant: Tenant, other: Tenant, surface: str, forgery: str) -> None:
    """Each forgery of a genuine login token is a 401 (RPC 401/30) wherever a token is accepted."""
    genuine = tenant.api.token
    accepted(surface, SURFACES[surface](tenant, genuine))
    forged = FORGERIES[forgery](genuine, parts(genuine)[1], other.company)
    refused(surface, SURFACES[surface](tenant, forged))


def test_a_token_expiring_while_cached_is_refused_after_its_exp(server, tenant: Tenant) -> None:
    """A short-lived token from auth.login works, then is refused once its exp passed, although the
    server cached its verification in between (the cache must not outlive exp)."""
    r = tenant.http.get("/auth.login?expiration_sec=1", headers={"Authorization": basic(tenant.key, tenant.secret)})
    token = r.json()["data"]["token"]
    for surface in ("rpc bearer", "cvat bearer"):
        accepted(surface, SURFACES[surface](tenant, token))
    time.sleep(max(0.0, parts(token)[1]["exp"] - time.time()) + 0.1)
    for surface in ("rpc bearer", "cvat bearer", "qarnot raw"):
        refused(surface, SURFACES[surface](tenant, token))
    _, body = SURFACES["rpc bearer"](tenant, token)
    assert "expired" in body["meta"]["result_msg"]


# --- Basic credentials and header shapes ---------------------------------------------------------------


def _basic_cases(t: Tenant) -> dict[str, tuple[str, tuple[int, int]]]:
    return {
        "wrong secret": (basic(t.key, t.secret + "x"), (401, 22)),
        "unknown key": (basic("UNKNOWNKEY0000000000000000000", t.secret), (401, 22)),
        "secret of another key": (basic(t.key, "x" * 67), (401, 22)),
        "empty secret": (basic(t.key, ""), (401, 22)),
        "not base64": ("Basic !!!not-base64!!!", (401, 21)),
        "no colon": ("Basic " + base64.b64encode(t.key.encode()).decode(), (401, 21)),
        "unknown scheme": (f"Digest {t.key}", (401, 10)),
        "bare token over RPC": (t.api.token, (401, 10)),
    }


@pytest.mark.parametrize("case", ["wrong secret", "unknown key", "secret of another key", "empty secret", "not base64",
                                  "no colon", "unknown scheme", "bare token over RPC"])  # fmt: skip
def test_bad_basic_credentials_and_headers_over_rpc(tenant: Tenant, case: str) -> None:
    header, (status, sub) = _basic_cases(tenant)[case]
    for endpoint in ("auth.login", "users.get_current_user"):
        r = tenant.http.post(f"/{endpoint}", json={}, headers={"Authorization": header})
        meta = r.json()["meta"]
        assert (r.status_code, meta["result_code"], meta["result_subcode"], r.json()["data"]) == (status, status, sub, {})
        assert tenant.secret not in meta["result_msg"]


@pytest.mark.parametrize("case", ["wrong secret", "unknown key", "not base64", "no colon"])
def test_bad_basic_credentials_over_cvat(tenant: Tenant, case: str) -> None:
    header, _ = _basic_cases(tenant)[case]
    status, body = _rest(tenant, "GET", "/api/tasks", {"Authorization": header})
    assert status == 401 and set(body) == {"detail"}
    assert _rest(tenant, "GET", "/api/tasks", {"Authorization": basic(tenant.key, tenant.secret)})[0] == 200


def test_no_credentials_at_all(tenant: Tenant) -> None:
    status, body = _rpc(tenant, {})
    assert (status, body["meta"]["result_subcode"], body["data"]) == (401, 20, {})
    for path in ("/api/tasks", "/tasks", "/api/v2/customTasks/"):
        assert _rest(tenant, "GET", path, {})[0] == 401


def test_impersonation_headers_do_not_change_who_calls(tenant: Tenant, other: Tenant) -> None:
    """ClearML's impersonation headers are not served: they never lend another tenant's identity."""
    for header in ("X-ClearML-Impersonate-As", "X-Trains-Impersonate-As", "X-ClearML-Act-As", "X-Trains-Act-As"):
        status, body = _rpc(tenant, {**tenant.bearer, header: other.user})
        me = body["data"]["user"]
        assert status == 200 and (me["id"], me["company"]["id"]) == (tenant.user, tenant.company)


# --- revocation ------------------------------------------------------------------------------------------


def _login(t: Tenant, key: str, secret: str) -> str:
    r = t.http.get("/auth.login", headers={"Authorization": basic(key, secret)})
    assert r.status_code == 200, r.text
    return r.json()["data"]["token"]


def _cvat_session(t: Tenant, key: str, secret: str) -> str:
    r = t.http.post("/api/auth/login", json={"username": key, "password": secret})
    t.http.cookies.clear()
    assert r.status_code == 200, r.text
    return r.cookies["sessionid"]


def _call(t: Tenant, token: str, endpoint: str, **data) -> dict:
    r = t.http.post(f"/v2.23/{endpoint}", json=data, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _works_everywhere(t: Tenant, token: str) -> None:
    for surface in ("rpc bearer", "cvat bearer", "qarnot raw", "datarobot token"):
        accepted(surface, SURFACES[surface](t, token))


def _refused_everywhere(t: Tenant, token: str) -> None:
    for surface in ("rpc bearer", "cvat bearer", "qarnot raw", "datarobot token"):
        refused(surface, SURFACES[surface](t, token))


def test_revoked_key_pair_stops_logging_in_and_what_was_minted_from_it_dies(server) -> None:
    """Revoking key K1 refuses its Basic logins (401/22) and, as documented in domain/api_tokens.py, every
    login token, CVAT session and API token minted from it (401/30); a second key pair of the same user,
    and what was minted from that one, keep working."""
    t = add_tenant(server, "epsilon")
    try:
        k1, s1 = t.key, t.secret
        t1 = _login(t, k1, s1)
        session = _cvat_session(t, k1, s1)
        api_from_k1 = _call(t, t1, "auth.create_api_token", label="from k1")["token"]
        second = _call(t, t1, "auth.create_credentials", label="k2")["credentials"]
        t2 = _login(t, second["access_key"], second["secret_key"])
        api_from_k2 = _call(t, t2, "auth.create_api_token", label="from k2")["token"]
        for token in (t1, api_from_k1, t2, api_from_k2):
            _works_everywhere(t, token)  # (and the login tokens are now in the verification cache)
        accepted("cvat session", SURFACES["cvat session"](t, session))

        assert _call(t, t2, "auth.revoke_credentials", access_key=k1) == {"revoked": 1}

        for endpoint in ("auth.login", "users.get_current_user"):
            r = t.http.post(f"/{endpoint}", headers={"Authorization": basic(k1, s1)})
            assert (r.status_code, r.json()["meta"]["result_subcode"]) == (401, 22)
        assert _rest(t, "GET", "/api/tasks", {"Authorization": basic(k1, s1)})[0] == 401
        r = t.http.post("/api/auth/login", json={"username": k1, "password": s1})
        assert r.status_code == 400 and "non_field_errors" in r.json()
        for token in (t1, api_from_k1):
            _refused_everywhere(t, token)
        refused("cvat session", SURFACES["cvat session"](t, session))
        refused("rpc bearer", SURFACES["rpc bearer"](t, session))
        for token in (t2, api_from_k2):
            _works_everywhere(t, token)
        assert [c["access_key"] for c in _call(t, t2, "auth.get_credentials")["credentials"]] == [second["access_key"]]
    finally:
        t.close()


def test_revoking_the_key_a_token_came_from_ends_that_very_token(server) -> None:
    t = add_tenant(server, "zeta")
    try:
        token = _login(t, t.key, t.secret)
        assert _call(t, token, "auth.revoke_credentials", access_key=t.key) == {"revoked": 1}
        _refused_everywhere(t, token)
        r = t.http.post("/auth.login", headers={"Authorization": f"Bearer {token}"})
        assert (r.status_code, r.json()["meta"]["result_subcode"]) == (401, 30)  # no fresh token from a dead one
    finally:
        t.close()


def test_revoked_api_token_is_refused_with_the_tokens_minted_from_it(server, tenant: Tenant) -> None:
    """An API token revoked (there is no RPC for it yet: the domain's revoke) is refused on every surface,
    and so are the login token and the API token made while authenticated by it."""
    import asyncio

    api_token = _call(tenant, tenant.api.token, "auth.create_api_token", label="to revoke")["token"]
    minted = _call(tenant, api_token, "auth.login")["token"]  # a login token for the API token's caller
    child = _call(tenant, minted, "auth.create_api_token", label="child")["token"]
    for token in (api_token, child):
        _works_everywhere(tenant, token)
    accepted("cvat bearer", SURFACES["cvat bearer"](tenant, minted))  # REST verifies without the RPC cache

    assert asyncio.run(server.app.services.extra["api_tokens"].revoke(api_token))

    for token in (api_token, minted, child):
        _refused_everywhere(tenant, token)
    _works_everywhere(tenant, tenant.api.token)  # the key pair's own login token is unaffected


def test_logout_ends_the_session_on_every_surface(server, tenant: Tenant) -> None:
    token = _login(tenant, tenant.key, tenant.secret)
    _works_everywhere(tenant, token)
    assert _call(tenant, token, "auth.logout") == {}
    _refused_everywhere(tenant, token)
    session = _cvat_session(tenant, tenant.key, tenant.secret)
    csrf = "security-csrf"
    r = tenant.http.post("/api/auth/logout", headers={"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf})
    tenant.http.cookies.clear()
    assert r.status_code == 200, r.text
    refused("cvat session", SURFACES["cvat session"](tenant, session))
    refused("rpc bearer", SURFACES["rpc bearer"](tenant, session))
