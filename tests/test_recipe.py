"""Recipes parse strictly into typed sections; every shipped recipe is valid."""
from dataclasses import dataclass
from pathlib import Path

import pytest

from toolchain import recipe as rc
from toolchain.errors import ToolchainError

MODELS = Path(__file__).resolve().parents[1] / "models"

MINIMAL = """
[model]
name = "kws"
[dataset]
name = "keywords"
"""


def parse(text: str) -> rc.Recipe:
    return rc.parse_recipe(text, name="test")


def error_of(text: str) -> str:
    with pytest.raises(ToolchainError) as err:
        parse(text)
    return str(err.value)


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_recipes_load(path):
    recipe = rc.load_recipe(path)
    assert recipe.name == path.stem
    assert recipe.model.name == path.stem
    assert recipe.train.epochs >= 1


def test_shipped_recipes_cover_the_four_models():
    assert sorted(p.stem for p in MODELS.glob("*.toml")) >= ["ad", "ic", "kws", "vww"]


def test_kws_recipe_is_trecx_with_early_view_assistance():
    recipe = rc.load_recipe(MODELS / "kws.toml")
    assert (recipe.exit.style, recipe.exit.ev_assist, recipe.exit.loss_weight) == ("trecx", True, 0.3)
    assert recipe.dataset.name == "keywords" and recipe.train.ev_assist_fraction == 0.8


def test_defaults_fill_missing_sections():
    recipe = parse(MINIMAL)
    assert recipe.exit.style == "none" and recipe.train.epochs == 10
    assert recipe.evaluate.thresholds == rc.DEFAULT_THRESHOLDS
    assert recipe.dataset.options == {} and recipe.model.input_shape is None


def test_unknown_section_names_it_and_the_allowed_ones():
    text = error_of(MINIMAL + "[compresss]\nx = 1\n")
    assert "[compresss]" in text
    for section in ("model", "exit", "dataset", "train", "evaluate"):
        assert section in text


def test_unknown_key_names_it_and_the_allowed_ones():
    text = error_of(MINIMAL + "[train]\nepoch = 3\n")
    assert "'epoch'" in text and "epochs" in text and "batch_size" in text


@pytest.mark.parametrize("snippet, expected", [
    ("[train]\nepochs = \"ten\"\n", "expected int"),
    ("[train]\nepochs = true\n", "expected int"),
    ("[exit]\nthreshold = \"high\"\n", "expected float"),
    ("[evaluate]\nthresholds = [0.5, \"x\"]\n", "thresholds[1]"),
    ("[model]\n", "not valid TOML"),  # a duplicate table
])
def test_wrong_types_are_refused(snippet, expected):
    assert expected in error_of(MINIMAL + snippet)


def test_int_is_accepted_where_a_float_is_expected():
    assert parse(MINIMAL + "[exit]\nthreshold = 1\n").exit.threshold == 1.0


@pytest.mark.parametrize("snippet, expected", [
    ("[exit]\nstyle = \"fast\"\n", "unknown style"),
    ("[exit]\nstyle = \"sdn\"\nev_assist = true\n", "ev_assist"),
    ("[exit]\nthreshold = 1.5\n", "threshold"),
    ("[train]\noptimizer = \"lion\"\n", "optimizer"),
    ("[train]\nlr_schedule = \"step\"\nlr_boundaries = [0.5]\nlr_values = [0.1]\n", "step schedule"),
    ("[train]\nlr_schedule = \"step\"\nlr = 0.1\nlr_boundaries = [1.5]\nlr_values = [0.1, 0.01]\n", "fractions"),
    ("[train]\nlr_values = [0.1]\n", "lr_schedule"),
    ("[evaluate]\nthresholds = []\n", "thresholds"),
])
def test_invalid_values_are_refused(snippet, expected):
    assert expected in error_of(MINIMAL + snippet)


def test_missing_required_section_and_key():
    assert "missing section [dataset]" in error_of("[model]\nname = \"kws\"\n")
    assert "missing key 'name'" in error_of("[model]\n[dataset]\nname = \"x\"\n")


def test_unknown_zoo_model_lists_the_known_ones():
    assert "kws" in error_of("[model]\nname = \"resnet50\"\n[dataset]\nname = \"x\"\n")


def test_autoencoder_refuses_an_exit():
    text = error_of("[model]\nname = \"ad\"\n[dataset]\nname = \"synthetic_machine\"\n[exit]\nstyle = \"trecx\"\n")
    assert "cannot have an early exit" in text and "style = \"none\"" in text


def test_step_schedule_uses_fractions_of_the_run():
    recipe = parse(MINIMAL + "[train]\nepochs = 12\nlr = 0.5\nlr_schedule = \"step\"\n"
                             "lr_boundaries = [0.3333, 0.6667]\nlr_values = [0.5, 0.1, 0.02]\n")
    assert [recipe.train.lr_at(e) for e in (0, 3, 4, 7, 8, 11)] == [0.5, 0.5, 0.1, 0.1, 0.02, 0.02]
    longer = recipe.replace("train", epochs=36)
    assert [longer.train.lr_at(e) for e in (11, 12, 23, 24)] == [0.5, 0.1, 0.1, 0.02]


def test_exponential_schedule():
    recipe = parse(MINIMAL + "[train]\nlr = 0.001\nlr_schedule = \"exponential\"\nlr_decay = 0.5\n")
    assert recipe.train.lr_at(3) == pytest.approx(0.000125)


def test_replace_validates_again():
    recipe = parse(MINIMAL)
    assert recipe.replace("train", epochs=3).train.epochs == 3
    with pytest.raises(ToolchainError):
        recipe.replace("train", epochs=0)


def test_round_trip_through_dict():
    recipe = rc.load_recipe(MODELS / "kws.toml")
    again = rc.recipe_from_dict(recipe.to_dict(), name="kws")
    assert again.sections == recipe.sections


def test_a_registered_section_is_accepted(monkeypatch):
    @dataclass(frozen=True)
    class ExtraSection:
        board: str = "mps2-an386"
        samples: int = 8

    monkeypatch.setitem(rc.SECTIONS._items, "extra_stage", ExtraSection)
    recipe = parse(MINIMAL + "[extra_stage]\nboard = \"mps3-an547\"\n")
    assert recipe.section("extra_stage") == ExtraSection("mps3-an547", 8)
    assert "'boards'" in error_of(MINIMAL + "[extra_stage]\nboards = 1\n")
