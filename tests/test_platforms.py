"""Platform profiles: detection from documented signals, and what each profile changes in a configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.errors import ConfigError
from orchestrator.config import load_config
from orchestrator.platforms import detect

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def nothing(_: str) -> bool:
    return False


def no_program(_: str) -> None:
    return None


@pytest.mark.parametrize(("environ", "name", "why"), [
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle", "KAGGLE_KERNEL_RUN_TYPE is set"),
    ({"COLAB_RELEASE_TAG": "release-colab_20241101"}, "colab", "COLAB_RELEASE_TAG is set"),
    ({"PAPERSPACE_FQDN": "abc.paperspacegradient.com"}, "paperspace", "PAPERSPACE_FQDN is set"),
    ({}, "local", "no notebook platform's signal"),
    ({"ORCHESTRATOR_PLATFORM": "colab", "KAGGLE_URL_BASE": "x"}, "colab", "forced by $ORCHESTRATOR_PLATFORM"),
])
def test_each_platform_is_known_by_its_documented_signal(environ: dict[str, str], name: str, why: str) -> None:
    found = detect(environ, exists=nothing, which=no_program)
    assert (found.name, found.why, found.gpu) == (name, why, False)


def test_mount_points_and_a_gpu_are_signals_too() -> None:
    kaggle = detect({}, exists=lambda path: path in ("/kaggle/working", "/proc/driver/nvidia"), which=no_program)
    assert (kaggle.name, kaggle.gpu, kaggle.gpu_why) == ("kaggle", True, "/proc/driver/nvidia exists")
    assert detect({}, exists=nothing, which=lambda _: "/usr/bin/nvidia-smi").gpu
    with pytest.raises(ConfigError, match="platform 'kagle': not one of kaggle, colab, paperspace, local"):
        detect({}, "kagle")


def test_on_kaggle_without_a_gpu_the_state_moves_and_the_local_tier_is_left_out() -> None:
    config = load_config(CONFIGS / "llm_routing.yaml", environ={"KAGGLE_KERNEL_RUN_TYPE": "Batch"})
    assert config.state_dir == Path("/kaggle/working/llm-orchestrator")
    assert "fallback" not in {t.name for t in config.engine.router.tiers}
    assert config.platform is not None and any("local tier fallback left out: no GPU" in n for n in config.platform.notes)
    on_a_laptop = load_config(CONFIGS / "llm_routing.yaml", environ={}, platform="local")
    assert "fallback" in {t.name for t in on_a_laptop.engine.router.tiers}, "a local machine keeps its local tier"


def test_what_the_configuration_or_the_command_line_says_wins(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"extends: {CONFIGS / 'simulated.yaml'}\n"
        "llm_routing:\n  optimization:\n    parallel_requests: 32\n"
        "platforms:\n  colab:\n    llm_routing:\n      optimization:\n        budget_limit: 5\n"
    )
    colab = load_config(config, environ={}, platform="colab", state_dir=tmp_path / "mine")
    assert colab.state_dir == tmp_path / "mine"
    assert colab.engine.ledger.limit_nd == 5_000_000_000, "platforms.colab applied over the document"
    assert {p.max_concurrency for p in colab.engine.providers if not p.local} == {8}, "a notebook's concurrency cap"
    assert "fallback" in {t.name for t in colab.engine.router.tiers}, "the simulator's local tier needs no GPU"
    local = load_config(config, environ={}, platform="local", state_dir=tmp_path / "mine")
    assert local.engine.ledger.limit_nd == 100_000_000_000 and {p.max_concurrency for p in local.engine.providers} >= {32}


def test_an_unknown_platform_in_the_configuration_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nplatforms:\n  kagle: {{}}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: platforms: kagle: not one of kaggle, colab, paperspace, local"):
        load_config(config, environ={})


@pytest.mark.parametrize(("platforms", "says"), [
    ("[kaggle, colab]", r"c\.yaml: platforms: must map platform names \(kaggle, colab, paperspace, local\) to overrides, got list"),
    ("kaggle", r"c\.yaml: platforms: must map platform names .* got str"),  # its letters were called unknown platforms
    ("{1: {}}", r"c\.yaml: platforms: 1: not one of kaggle"),  # a TypeError joining the names
    ("{local: 5}", r"c\.yaml: platforms\.local: must be a mapping of configuration keys, got int"),
])
def test_a_platforms_section_of_the_wrong_shape_is_named_with_its_file(tmp_path: Path, platforms: str, says: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nplatforms: {platforms}\n")
    with pytest.raises(ConfigError, match=says):
        load_config(config, environ={})
