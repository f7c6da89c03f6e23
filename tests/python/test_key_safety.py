# SPDX-License-Identifier: MIT
"""Keys no caller can steer into another's entry (issue 13, findings 1-3 and 14): filled-in values
are encoded injectively by the core, templates of one namespace that could give one key two
meanings are refused at decoration, only plain fields are allowed, and a value that does not
identify a user (a method, a default repr with its address, a property that raises, a lone
surrogate) runs the call uncached with one warning instead of sharing or failing it."""

from __future__ import annotations

import threading

import pytest
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from httpcache import HTTPCache, _httpcache, cache
from httpcache._keys import _pattern, patterns_overlap


class User:
    def __init__(self, name: str) -> None:
        self.name = name


def user_from_header(x_user: str = Header()) -> User:
    return User(x_user)


def orders_app(first: str) -> TestClient:
    """The reproduction: two routes keyed by the user's name, `orders:{}` and
    `orders:{}:summary`; `first` says which route's decorator is applied first."""
    app = FastAPI()
    counter = {"n": 0}

    def orders_route() -> None:
        @app.get("/orders")
        @cache(key="orders:{}", obj="user", obj_attr="name", ttl_in_seconds=60)
        async def orders(request: Request, response: Response, user: User = Depends(user_from_header)):
            counter["n"] += 1
            return JSONResponse({"orders_of": user.name})

    def summary_route() -> None:
        @app.get("/summary")
        @cache(key="orders:{}:summary", obj="user", obj_attr="name", ttl_in_seconds=60)
        async def summary(request: Request, response: Response, user: User = Depends(user_from_header)):
            return JSONResponse({"summary_of": user.name})

    for add in (orders_route, summary_route) if first == "orders" else (summary_route, orders_route):
        add()
    return TestClient(app)


@pytest.mark.parametrize("first", ["orders", "summary"])
def test_a_user_name_cannot_reach_another_users_entry(store, first):
    client = orders_app(first)
    # Both orders of requests: the victim's entry first, then the attacker's, and the reverse.
    assert client.get("/summary", headers={"x-user": "alice"}).json() == {"summary_of": "alice"}
    r = client.get("/orders", headers={"x-user": "alice:summary"})
    assert r.json() == {"orders_of": "alice:summary"} and r.headers.get("cache-hit") is None
    assert client.get("/orders", headers={"x-user": "bob:summary"}).json() == {"orders_of": "bob:summary"}
    r = client.get("/summary", headers={"x-user": "bob"})
    assert r.json() == {"summary_of": "bob"} and r.headers.get("cache-hit") is None
    assert store.get("orders:alice%3Asummary") is not None  # the attacker's entry, encoded
    assert b"alice" in store.get("orders:alice:summary")


def test_plain_ids_keep_their_keys(store):
    class Seeded:
        id = "112358"

    @cache(key="b.logged_in.{}", obj="user", obj_attr="id")
    def logged_in(user):
        return {"user": user.id}

    logged_in(Seeded())
    assert store.get("b.logged_in.112358") is not None


@pytest.mark.parametrize(
    "fixed, templated",
    [("a.b", "a.{}"), ("home", "{}"), ("x.y.z", "x.{}.z"), ("u.50%25", "u.{}")],
)
def test_templates_that_can_meet_a_fixed_key_are_refused(fixed, templated, namespace):
    ns = f"{namespace}-refused"
    cache(key=fixed, namespace=ns)(lambda: 1)
    with pytest.raises(ValueError, match="can give the same key"):
        cache(key=templated, obj="user", obj_attr="name", namespace=ns)(lambda user: 1)
    # In another namespace the same template is fine (namespaces cannot collide).
    cache(key=templated, obj="user", obj_attr="name", namespace=f"{ns}-other")(lambda user: 1)
    # And the same template again is one entry shared on purpose.
    cache(key=fixed, namespace=ns)(lambda: 2)


@pytest.mark.parametrize("template", ["a.{:.2}", "a.{:.0}", "a.{:>5}", "a.{0.__class__}", "a.{!r}", "a.{name}"])
def test_format_specs_are_refused_at_decoration(template):
    with pytest.raises(ValueError, match="template"):
        cache(key=template, obj="user", obj_attr="name")(lambda user: 1)


_LITERALS = st.text(alphabet="ab:./-_%{}", min_size=0, max_size=4).map(lambda s: s.replace("{", "{{").replace("}", "}}"))


@st.composite
def templates(draw):
    parts = draw(st.lists(_LITERALS, min_size=1, max_size=4))
    fields = draw(st.integers(0, len(parts)))
    out = []
    for i, part in enumerate(parts):
        out.append(part)
        if i < fields:
            out.append("{}")
    t = "".join(out)
    return t if t else "k"


_VALUES = st.binary(min_size=1, max_size=8) | st.text(alphabet="ab:.%{}-_ \u00e9", min_size=1, max_size=6).map(str.encode)


@settings(max_examples=400, deadline=None)
@given(templates(), templates(), st.data())
def test_no_value_makes_two_templates_meet_unless_refused(t1, t2, data):
    """The property: in one namespace, two keys are equal only for one template with equal values,
    or for two templates that claim() would refuse to have side by side."""
    b1, b2 = t1.encode(), t2.encode()
    n1, n2 = len([p for p in _pattern(b1) if p == -1]), len([p for p in _pattern(b2) if p == -1])
    v1 = data.draw(st.lists(_VALUES, min_size=n1, max_size=n1))
    v2 = data.draw(st.lists(_VALUES, min_size=n2, max_size=n2))
    try:
        k1, k2 = _httpcache.key_format(b1, v1), _httpcache.key_format(b2, v2)
    except ValueError:
        assume(False)  # e.g. two fields without a separator: refused by the core
    if k1 != k2:
        return
    if _pattern(b1) == _pattern(b2):
        assert v1 == v2, f"{t1!r} gives one key to {v1!r} and {v2!r}"
    else:
        assert patterns_overlap(_pattern(b1), _pattern(b2)), f"{t1!r} and {t2!r} meet at {k1!r} unrefused"


def test_exhaustively_no_two_small_templates_meet_unless_refused():
    """Every template of up to 4 tokens over a few literals and fields, every value from a set
    chosen to cross boundaries ('-' is copied, '.' and '%' encoded): keys are equal only for one
    pattern with equal values, or for two patterns claim() refuses side by side."""
    import itertools

    tokens = ["a", "-", ".", "%", "{}"]
    values = [b"a", b"-", b".", b"a.", b"%", b"a-", b"%2E", b"-a"]
    seen: dict[bytes, tuple] = {}
    for n in range(1, 5):
        for combo in itertools.product(tokens, repeat=n):
            t = "".join(combo).encode()
            fields = combo.count("{}")
            for vs in itertools.product(values, repeat=fields):
                try:
                    k = _httpcache.key_format(t, list(vs))
                except ValueError:
                    continue
                pat = _pattern(t)
                if k in seen:
                    pat2, vs2, t2 = seen[k]
                    if pat2 == pat:
                        assert vs2 == vs, f"{t!r} gives {k!r} to {vs!r} and {vs2!r}"
                    else:
                        assert patterns_overlap(pat, pat2), f"{t!r} and {t2!r} meet at {k!r} unrefused"
                else:
                    seen[k] = (pat, vs, t)


def test_a_template_without_namespace_meets_the_init_namespace(namespace):
    """None is init()'s namespace: checked against it at decoration, and again by a later init()."""
    HTTPCache.init(namespace=f"{namespace}-a")
    cache(key="nsa.b", namespace=f"{namespace}-a")(lambda: 1)
    with pytest.raises(ValueError, match="can give the same key"):
        cache(key="nsa.{}", obj="user", obj_attr="name")(lambda user: 1)
    cache(key="nsb.{}", obj="user", obj_attr="name")(lambda user: 1)  # None: init()'s is -a
    cache(key="nsb.x", namespace=f"{namespace}-b")(lambda: 1)
    with pytest.raises(ValueError, match="can give the same key"):
        HTTPCache.init(namespace=f"{namespace}-b")  # would make nsb.{} and nsb.x one namespace
    HTTPCache.close()


def test_one_per_user_template_filled_from_two_attributes_is_refused(namespace):
    ns = f"{namespace}-attr"
    cache(key="u.{}", obj="user", obj_attr="id", namespace=ns)(lambda user: 1)
    cache(key="u.{}", obj="member", obj_attr="id", namespace=ns)(lambda member: 1)  # same fill: shared
    with pytest.raises(ValueError, match="obj_attr='id'"):
        cache(key="u.{}", obj="user", obj_attr="name", namespace=ns)(lambda user: 1)


class Account:
    """An object without its own __str__: its text is a repr with an address, which is reused."""

    def get_id(self) -> str:
        return "never used"


def test_methods_and_default_reprs_run_uncached_with_one_warning(store, warnings_log):
    calls = []

    @cache(key="acct.{}", obj="account", obj_attr="get_id")
    def by_method(account):
        calls.append(1)
        return {"n": len(calls)}

    @cache(key="acct2.{}", obj="holder", obj_attr="account")
    def by_object(holder):
        calls.append(1)
        return {"n": len(calls)}

    class Holder:
        def __init__(self) -> None:
            self.account = Account()

    @cache(key="acct3.{}", obj="holder", obj_attr="view")
    def by_view(holder):
        calls.append(1)
        return {"n": len(calls)}

    class Viewer:
        def __init__(self) -> None:
            self.view = memoryview(b"x")  # its text is '<memory at 0x...>'

    results = [by_method(Account())["n"] for _ in range(30)] + [by_object(Holder())["n"] for _ in range(30)]
    results += [by_view(Viewer())["n"] for _ in range(30)]
    assert results == list(range(1, 91)), "every call must compute: no user may get another's result"
    texts = [r.getMessage() for r in warnings_log()]
    assert len(texts) == 3 and all("does not identify anything" in t for t in texts), texts


def test_a_value_that_raises_or_cannot_be_encoded_runs_uncached_with_one_warning(store, warnings_log):
    class Broken:
        @property
        def id(self) -> str:
            raise RuntimeError("no session")

    class Surrogate:
        id = "bob\udc80"

    seen = []

    @cache(key="brk.{}", obj="user", obj_attr="id")
    async def handler(user):
        seen.append(1)
        return {"ok": len(seen)}

    import asyncio

    async def run() -> list:
        return [await handler(Broken()) for _ in range(3)] + [await handler(Surrogate()) for _ in range(3)]

    assert [r["ok"] for r in asyncio.run(run())] == [1, 2, 3, 4, 5, 6]
    texts = [r.getMessage() for r in warnings_log()]
    assert len(texts) == 2 and all("running uncached" in t for t in texts), texts


def test_thirty_users_keyed_by_a_method_each_get_their_own(store):
    """The reported race: 30 users of a sync route keyed by a bound method (its text names the
    object's address, reused once freed): 4 got another's response. Now each computes its own."""

    class Member:
        def __init__(self, name: str) -> None:
            self.name = name

        def get_id(self) -> str:
            return self.name

    @cache(key="me.{}", obj="user", obj_attr="get_id")
    def me(user):
        return {"me": user.name}

    out: dict[str, dict] = {}

    def call(i: int) -> None:
        for _ in range(20):  # members are created and freed: their addresses are reused
            out[f"u{i}"] = me(Member(f"u{i}"))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(out[name] == {"me": name} for name in out) and len(out) == 30


def test_using_the_cache_without_init_says_once_which_backend_is_in_force():
    """Issue 13, finding 15: without HTTPCache.init() a decorator caches in a per-process
    memory:// store; the first use says so, once."""
    import subprocess
    import sys

    code = (
        "import logging\n"
        "logging.basicConfig(level=logging.WARNING, format='%(name)s %(message)s')\n"
        "from httpcache import cache\n"
        "@cache(key='k', ttl_in_seconds=60)\n"
        "def f():\n    return 1\n"
        "@cache(key='j', ttl_in_seconds=60, namespace='other')\n"
        "def g():\n    return 2\n"
        "print([f(), f(), g()])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[1, 1, 2]"
    lines = [line for line in r.stderr.splitlines() if "init() was not called" in line]
    assert len(lines) == 1 and "memory://" in lines[0], r.stderr
