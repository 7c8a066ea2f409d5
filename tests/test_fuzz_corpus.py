"""Replays of the fuzzer's findings and a fixed set of structured mutants (tests/fuzz/), in the default
test run: every input ends in a result or one clear error, and accepted mutants are bit-exact."""
from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).parent / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))

from harness import compile_one  # noqa: E402
from mutator import mutate  # noqa: E402
from seeds import NEW_OP_SEEDS, make_seeds  # noqa: E402

CORPUS = sorted(FUZZ_DIR.glob("corpus/*.tflite"))


@pytest.mark.parametrize("target", ["ref", "dsp"])
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_past_findings_end_cleanly(path, target):
    outcome = compile_one(path.read_bytes(), check_samples=2, target=target)  # raises on traceback, bad C, mismatch
    assert outcome.kind in {"refused", "bit-exact"}
    if outcome.kind == "refused":
        assert outcome.detail and "Traceback" not in outcome.detail


def test_corpus_is_not_empty():
    assert CORPUS, "tests/fuzz/corpus/ holds the fuzzer's past findings; it should never be empty"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory, keras):
    return make_seeds(tmp_path_factory.mktemp("seeds"), ["conv", "dense", "two_outputs", "concat", "pad"])


def test_structured_mutants_are_refused_or_bit_exact(seeds):
    """300 mutants from a fixed RNG: refusals are one error; every 10th accepted one is checked."""
    rng, outcomes, accepted = random.Random(1234), Counter(), 0
    for _ in range(300):
        mutant = mutate(rng.choice(seeds).read_bytes(), rng)
        if mutant is None:
            continue
        outcome = compile_one(mutant, check_samples=2 if accepted % 10 == 0 else 0,
                              target="dsp" if accepted % 2 else "ref")
        accepted += outcome.kind != "refused"
        outcomes[outcome.kind] += 1
    assert outcomes["refused"] > 50 and outcomes["bit-exact"] >= 3, outcomes


@pytest.fixture(scope="module")
def new_op_seeds(tmp_path_factory, keras):
    return make_seeds(tmp_path_factory.mktemp("new_op_seeds"), list(NEW_OP_SEEDS))


def test_mutants_of_the_issue_17_ops_are_refused_or_bit_exact(new_op_seeds):
    """150 mutants of the transposed conv, resize, reduce, split/pack/gather and unknown-batch seeds (small integer
    constants too: axes, sizes, indices, block shapes): refusals are one error; every 8th accepted one is checked."""
    rng, outcomes, accepted = random.Random(17), Counter(), 0
    for _ in range(150):
        mutant = mutate(rng.choice(new_op_seeds).read_bytes(), rng)
        if mutant is None:
            continue
        outcome = compile_one(mutant, check_samples=2 if accepted % 8 == 0 else 0,
                              target="dsp" if accepted % 2 else "ref")
        accepted += outcome.kind != "refused"
        outcomes[outcome.kind] += 1
    assert outcomes["refused"] > 30 and outcomes["bit-exact"] >= 3, outcomes
