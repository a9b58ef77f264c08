"""Typed recipes and `--set` overrides."""

from __future__ import annotations

import dataclasses

import pytest

from suite.config import TrainRecipe, apply_overrides, fingerprint, recipe_from_dict
from suite.errors import UserError


@dataclasses.dataclass(frozen=True)
class Recipe(TrainRecipe):
    widths: tuple[int, ...] = (8, 16)
    name: str = "x"
    dropout: float = 0.5
    span: tuple[float, float] = (0.5, 1.0)


def test_overrides_are_typed():
    r = apply_overrides(Recipe(), ["epochs=3", "dropout=0.25", "deterministic=true", "widths=4,8,16", "name=y"])
    assert (r.epochs, r.dropout, r.deterministic, r.widths, r.name) == (3, 0.25, True, (4, 8, 16), "y")
    assert Recipe().epochs != 3  # The original is untouched (frozen).


def test_a_tuple_can_come_from_a_file_of_one_value_per_line(tmp_path):
    (tmp_path / "widths.txt").write_text("4\n\n 8 \n16\n", encoding="utf-8")
    assert apply_overrides(Recipe(), [f"widths=@{tmp_path / 'widths.txt'}"]).widths == (4, 8, 16)
    with pytest.raises(UserError, match=r"Expected `--set widths=@FILE` with a readable UTF-8 file .* Received: "):
        apply_overrides(Recipe(), [f"widths=@{tmp_path / 'absent.txt'}"])


@pytest.mark.parametrize(
    "pair, message",
    [
        ("epoch=3", r"Unknown recipe key 'epoch'\. Did you mean 'epochs'\?.*Expected one of: .*batch_size"),
        ("epochs=3.5", r"Expected `--set epochs=<int>`. Received: epochs='3.5'"),
        ("dropout=high", r"Expected `--set dropout=<float>`"),
        ("deterministic=maybe", r"Expected `--set deterministic=<bool>`"),
        ("widths=4,x", r"Expected `--set widths=<int>`"),
        ("span=1,2,3", r"Expected `--set span=<tuple\[float, float\]>`. Received: span='1,2,3'"),  # Exactly two.
        ("epochs", r"Expected `--set key=value`. Received: 'epochs'"),
    ],
)
def test_bad_overrides_say_what_was_expected(pair, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(Recipe(), [pair])


def test_recipe_round_trips_through_json_types():
    r = Recipe(widths=(1, 2))
    assert recipe_from_dict(Recipe, {**dataclasses.asdict(r), "widths": [1, 2]}) == r


def test_fingerprint_follows_content_not_location(tmp_path):
    for root in ("a", "b"):
        (tmp_path / root / "sub").mkdir(parents=True)
        (tmp_path / root / "sub" / "f.txt").write_text("hello")
    assert fingerprint(tmp_path / "a") == fingerprint(tmp_path / "b")
    (tmp_path / "b" / "sub" / "f.txt").write_text("hellO")
    assert fingerprint(tmp_path / "a") != fingerprint(tmp_path / "b")
