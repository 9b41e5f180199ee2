"""`specgate routes`: every compiled endpoint version, and which handler (if any) serves it."""

import re

from specgate.cli import main


def test_routes_lists_every_version_with_its_handler(capsys):
    assert main(["routes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows, summary = lines[:-1], lines[-1]
    assert any(re.fullmatch(r"tasks\.get_all\s+2\.26\s+tasks\.get_all", r) for r in rows)
    assert any(re.fullmatch(r"tasks\.get_all_ex\s+999\.0 draft\s+tasks\.get_all_ex", r) for r in rows)
    served = sum(1 for r in rows if not r.endswith("not implemented"))
    assert summary == f"{served} of {len(rows)} endpoint versions have a handler"


def test_routes_missing_shows_only_unserved_versions(capsys):
    assert main(["routes", "--missing"]) == 0
    *rows, summary = capsys.readouterr().out.splitlines()
    assert all(r.endswith("-- not implemented") for r in rows)
    total = int(summary.split(" of ")[1].split()[0])
    assert int(summary.split()[0]) == total - len(rows)
