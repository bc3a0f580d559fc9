"""A bad value given with --set is blamed on the --set, not on a line of the config file."""

from __future__ import annotations

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.errors import ConfigError


def test_a_bad_set_value_names_the_set(fake_host, pipeline_config):
    with pytest.raises(ConfigError) as caught:
        load_config(pipeline_config(), fake_host, ["data.limit=abc"])
    rendered = caught.value.render()
    assert "at --set data.limit=abc, field 'data.limit'" in rendered and "pipeline.toml" not in rendered


def test_several_problems_each_name_their_source(fake_host, pipeline_config):
    path = pipeline_config("[data.extra]\n")  # not a data key: a problem of the file itself
    with pytest.raises(ConfigError) as caught:
        load_config(path, fake_host, ["data.limit=abc"])
    details = caught.value.details
    assert any(d.endswith("(--set data.limit=abc)") for d in details)
    assert any("data.extra" in d and "--set" not in d for d in details)
