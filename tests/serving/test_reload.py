"""Hot reload decisions with stand-in states (no registry, no server)."""

from __future__ import annotations

from serving.reload import Reloader


class Registry:
    def __init__(self) -> None:
        self.champions = {"churn": 1}
        self.broken: set[int] = set()
        self.down = False
        self.loads = 0

    def current(self) -> dict:
        if self.down:
            raise ConnectionError("registry down")
        return dict(self.champions)

    def load(self) -> dict:
        self.loads += 1
        if self.champions["churn"] in self.broken:
            raise ValueError("smoke check failed: NaN churn probability")
        return {"versions": dict(self.champions)}


def make(reg: Registry) -> Reloader:
    return Reloader({"versions": {"churn": 1}}, reg.load, reg.current, lambda s: s["versions"])


def test_promotion_is_picked_up_and_a_broken_version_refused_once():
    reg = Registry()
    r = make(reg)
    assert r.check() == "unchanged" and reg.loads == 0
    reg.champions["churn"] = 2
    assert r.check() == "reloaded" and r.state == {"versions": {"churn": 2}}
    reg.champions["churn"], reg.broken = 3, {3}
    assert r.check() == "refused"
    assert r.state == {"versions": {"churn": 2}}  # the old one keeps serving
    assert r.refused == {"versions": {"churn": 3}, "reason": "ValueError: smoke check failed: NaN churn probability"}
    assert r.check() == "already refused" and reg.loads == 2  # not retried until the registry changes
    reg.champions["churn"] = 4
    assert r.check() == "reloaded" and r.refused is None and r.state == {"versions": {"churn": 4}}


def test_registry_outage_keeps_serving():
    reg = Registry()
    r = make(reg)
    reg.down = True
    assert r.check() == "registry unavailable" and r.state == {"versions": {"churn": 1}}


def test_champion_watch_asks_the_registry_only_when_its_files_changed():
    from serving.reload import ChampionWatch

    reg, files = Registry(), {"mark": "a"}
    watch = ChampionWatch(reg.current, lambda: files["mark"])
    assert watch() == {"churn": 1} and watch.queries == 1
    reg.champions["churn"] = 2  # (a registry write would change the files; the mark says it did not)
    assert watch() == {"churn": 1} and watch.queries == 1
    files["mark"] = "b"
    assert watch() == {"churn": 2} and watch.queries == 2
    assert watch() == {"churn": 2} and watch.queries == 2
    files["mark"] = None  # a registry on a server: asked at every check
    assert watch() == {"churn": 2} and watch() == {"churn": 2} and watch.queries == 4
    reg.down, files["mark"] = True, "c"
    try:
        watch()
        raise AssertionError("the outage must reach the reloader")
    except ConnectionError:
        pass
    reg.down = False
    assert watch() == {"churn": 2} and watch.queries == 6  # the failed question is asked again
