"""Options.build: the darknet build whose layer rules apply, validated and recorded."""

from __future__ import annotations

import pytest

from cfgsched.layers import layer_rules
from cfgsched.options import OptionError, Options
from cfgsched.reader.parser import parse
from cfgsched.run import translate

CFG = """[net]
batch=1
width=8
height=8
channels=3
max_batches=100
[convolutional]
filters=2
size=1
[convolutional]
filters=2
size=1
stopbackward=30
[convolutional]
filters=2
size=1
"""


def test_build_is_validated_and_recorded_only_when_not_the_default() -> None:
    with pytest.raises(OptionError, match="build must be 'gpu' or 'cpu', got 'tpu'"):
        Options(build="tpu")
    assert "build" not in Options().to_record()
    assert Options(build="cpu").to_record()["build"] == "cpu"
    assert Options.from_record(Options(build="cpu").to_record()) == Options(build="cpu")


@pytest.mark.parametrize("build", ["gpu", "cpu"])
def test_run_layers_follow_the_build(build: str) -> None:
    s = parse(CFG, fork="alexeyab")
    run = translate(s, Options(build=build))
    assert run.layers == layer_rules(s, build=build)
    # alexeyab, stopbackward=30 > 1: the GPU build passes gradient from update 31, the CPU
    # build never (the table of docs/design.md, layer rules)
    frozen = run.layers[0]
    assert (frozen.first, frozen.last) == (0, 1)
    assert frozen.gradient_from == (31 if build == "gpu" else None)
