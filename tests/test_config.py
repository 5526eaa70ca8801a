"""Settings: parsing, validation, provenance, preset rules."""
import dataclasses

import pytest

from reproduce import registry
from reproduce.config import ReproError, describe, resolve, setting


@dataclasses.dataclass(frozen=True)
class Cfg:
    widths: tuple[int, ...] = setting((1, 2), stated=True, size=True)
    lr: float = setting(0.1, stated=False)
    flag: bool = setting(False, stated=False)
    mode: str = setting("a", stated=False, choices=("a", "b"))


def test_resolve_order_and_types():
    cfg = resolve(Cfg, {"widths": (5,)}, ["lr=0.5", "flag=true", "mode=b", "widths=3, 4"])
    assert cfg == Cfg(widths=(3, 4), lr=0.5, flag=True, mode="b")
    assert resolve(Cfg, {"widths": (5,)}, []).widths == (5,)


@pytest.mark.parametrize("bad", ["nope=1", "lr=abc", "flag=maybe", "mode=c", "widths=", "lr", "widths=1,x",
                                 "lr=-1"])
def test_resolve_rejects(bad):
    with pytest.raises(ReproError):
        resolve(Cfg, {}, [bad])


def test_describe_marks_provenance():
    d = describe(Cfg())
    assert d["widths"] == {"value": [1, 2], "source": "stated", "help": ""}
    assert d["lr"]["source"] == "not_stated"


def test_presets_may_only_touch_sizes():
    fig = registry.figures("norm")[0]
    with pytest.raises(ValueError):
        registry.register(dataclasses.replace(fig, key="figX", presets={"smoke": {"dtype": "float32"}}))
    assert ("norm-preservation", "figX") not in registry._FIGURES


def test_every_not_stated_setting_has_help():
    for fig in registry.figures():
        for f in dataclasses.fields(fig.config):
            assert f.metadata["source"] in ("stated", "not_stated")
            if f.metadata["source"] == "not_stated" and not f.metadata["size"]:
                assert f.metadata["help"] or f.metadata["choices"], (fig.key, f.name)


def test_lookup_names_and_aliases():
    assert registry.paper("NORM").name == "norm-preservation"
    assert registry.paper("Norm-Preservation").alias == "norm"
    assert registry.normalize_key("2") == registry.normalize_key("Fig2") == "fig2"
    with pytest.raises(ReproError):
        registry.paper("nope")
    with pytest.raises(ReproError):
        registry.figure("norm", "9")


def test_equal_configs_written_differently_share_one_variant_tag():
    from reproduce import layout, registry, runner
    fig = registry.figure("bridge", "fig4")

    def tag(*sets, seed=0):
        return layout.variant_tag(list(sets), seed, runner.prepare(fig, "smoke", list(sets)))
    assert tag("width=1") == tag("width=1.0") == tag("width=0.5", "width=1") == tag(" width=1e0")
    assert tag("width=0.5") != tag("width=1") and tag("width=1", seed=1) != tag("width=1")
    assert layout.variant_tag([], 0, runner.prepare(fig, "smoke", [])) is None
