"""Configuration loading: the shipped files load, and each broken file says what and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.errors import ConfigError
from orchestrator.config import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

GOOD_TIER = """
llm_routing:
  complexity_detection:
    features:
      - grid_size_score: 1.0
    thresholds: {simple: 0.5, complex: 1.0}
  model_tiers:
    tier_1:
      name: Cheap
      cost_per_million_tokens: 0.15
      max_tokens: 100
      api_endpoint: http://127.0.0.1:1/v1
  optimization:
    budget_limit: 1.0
"""


def write(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_story_configuration_loads_with_its_exact_numbers() -> None:
    config = load_config(CONFIGS / "llm_routing.yaml", environ={})
    tiers = {t.name: t for t in config.engine.router.tiers}
    assert [t.label for t in tiers.values()] == [
        "Qwen2.5-Coder", "Gemini 2.5 Flash", "GLM-4.5", "GPT-5", "Falcon Mamba 7B",
    ]
    prices = {
        p.name: (p.input_price_nd_per_mtok, p.output_price_nd_per_mtok) for p in config.engine.providers
    }
    assert prices["Qwen2.5-Coder"] == (150_000_000, 150_000_000)
    assert prices["Gemini 2.5 Flash"] == (310_000_000, 2_620_000_000)
    assert prices["GLM-4.5"] == (590_000_000, 2_190_000_000)
    assert prices["GPT-5"] == (1_250_000_000, 10_000_000_000)
    assert prices["Falcon Mamba 7B"] == (0, 0)
    assert [t.max_tokens for t in tiers.values()] == [4096, 8192, 16384, 32768, 2048]
    assert [t.temperature for t in tiers.values()] == [0.7, 0.8, 0.9, 0.95, 0.6]
    assert config.engine.router.estimator.thresholds == (
        ("simple", 0.3), ("medium", 0.6), ("complex", 0.85), ("breakthrough", 0.95),
    )
    assert config.engine.router.estimator.weights == {
        "grid_size_score": 0.3, "pattern_complexity": 0.3, "color_diversity": 0.2, "transformation_hints": 0.2,
    }
    assert config.engine.ledger.limit_nd == 100 * 10**9
    assert 0.8 in config.engine.ledger.warning_thresholds
    assert tiers["fallback"].local and tiers["tier_4"].escalation_only
    assert all(p.max_concurrency == 3 for p in config.engine.providers)


def test_simulated_configuration_extends_the_story_and_points_at_the_simulator() -> None:
    config = load_config(CONFIGS / "simulated.yaml", environ={})
    assert config.uses_simulator
    assert all(p.base_url.startswith("simulator:") for p in config.engine.providers)
    assert all(p.api_key_env is None for p in config.engine.providers)
    assert config.engine.ledger.limit_nd == 100 * 10**9


def test_environment_interpolation_with_and_without_default(tmp_path: Path) -> None:
    text = GOOD_TIER.replace("http://127.0.0.1:1/v1", "${ENDPOINT:-http://127.0.0.1:2/v1}")
    path = write(tmp_path, text)
    assert load_config(path, environ={}).engine.providers[0].base_url == "http://127.0.0.1:2/v1"
    assert (
        load_config(path, environ={"ENDPOINT": "https://e.example/v1"}).engine.providers[0].base_url
        == "https://e.example/v1"
    )
    strict = write(tmp_path, GOOD_TIER.replace("http://127.0.0.1:1/v1", "${ENDPOINT}"), "y.yaml")
    with pytest.raises(ConfigError, match=r"y\.yaml: llm_routing\.model_tiers\.tier_1\.api_endpoint: environment variable ENDPOINT is not set"):
        load_config(strict, environ={})


BROKEN = [
    (
        "price is a word",
        GOOD_TIER.replace("cost_per_million_tokens: 0.15", "cost_input: cheap\n      cost_output: 1"),
        r'x\.yaml:10: llm_routing\.model_tiers\.tier_1\.cost_input: must be a number between 0 and 100000, got "cheap"',
    ),
    (
        "negative budget",
        GOOD_TIER.replace("budget_limit: 1.0", "budget_limit: -5"),
        r"llm_routing\.optimization\.budget_limit: must be a number between 0 and 1000000000, got -5",
    ),
    (
        "a provider's concurrency beyond what its worker tasks should be",
        GOOD_TIER.replace("max_tokens: 100", "max_tokens: 100\n      max_concurrency: 100000"),
        r"llm_routing\.model_tiers\.tier_1\.max_concurrency: must be an integer between 1 and 4096, got 100000",
    ),
    (
        "unknown protocol",
        GOOD_TIER.replace("max_tokens: 100", "max_tokens: 100\n      protocol: carrier-pigeon"),
        r'llm_routing\.model_tiers\.tier_1\.protocol: unknown provider protocol \(known: anthropic, gemini, openai, openai-stream\), got "carrier-pigeon"',
    ),
    (
        "missing endpoint",
        GOOD_TIER.replace("      api_endpoint: http://127.0.0.1:1/v1\n", ""),
        r"llm_routing\.model_tiers\.tier_1\.api_endpoint: required key is missing",
    ),
    (
        "thresholds out of order",
        GOOD_TIER.replace("{simple: 0.5, complex: 1.0}", "{simple: 0.5, complex: 0.4}"),
        r"llm_routing\.complexity_detection\.thresholds\.complex: must be greater than the previous threshold 0\.5, got 0\.4",
    ),
    (
        "max_tokens not an integer",
        GOOD_TIER.replace("max_tokens: 100", "max_tokens: lots"),
        r'llm_routing\.model_tiers\.tier_1\.max_tokens: must be an integer between 1 and 100000000, got "lots"',
    ),
    (
        "unknown key (a typo)",
        GOOD_TIER.replace("max_tokens: 100", "max_tokens: 100\n      temprature: 0.5"),
        r"llm_routing\.model_tiers\.tier_1\.temprature: unknown key",
    ),
    (
        "key in the file instead of the environment",
        GOOD_TIER.replace("max_tokens: 100", "max_tokens: 100\n      headers: {Authorization: Bearer sk-123}"),
        r"headers\.Authorization: credentials must come from api_key_env",
    ),
    (
        "no price for a paid tier",
        GOOD_TIER.replace("      cost_per_million_tokens: 0.15\n", ""),
        r"llm_routing\.model_tiers\.tier_1: must give its price",
    ),
    (
        "endpoint is not a URL",
        GOOD_TIER.replace("http://127.0.0.1:1/v1", "ftp://nowhere"),
        r'api_endpoint: must be an http\(s\):// URL or simulator:/path, got "ftp://nowhere"',
    ),
    (
        "a tier cap names no tier",
        GOOD_TIER + "  budget:\n    tier_caps: {tier_9: 1}\n",
        r"llm_routing\.budget\.tier_caps\.tier_9: names no tier",
    ),
    (
        "temperature out of range",
        GOOD_TIER.replace("max_tokens: 100", "max_tokens: 100\n      temperature: 7"),
        r"temperature: must be a number between 0 and 2, got 7",
    ),
    (
        "an answer bound too small to hold an answer",
        GOOD_TIER.replace("max_tokens: 100", "max_tokens: 100\n      max_answer_bytes: 10"),
        r"llm_routing\.model_tiers\.tier_1\.max_answer_bytes: must be an integer between 1024 and 1073741824, got 10",
    ),
    (
        "aliases nested in aliases (a billion laughs)",
        "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '1'] * 9)}]\n" for i in range(8)) + "llm_routing: *l7\n",
        r"x\.yaml: expands to 102,908,566 values, more than the 100,000 a configuration may hold",
    ),
    ("an alias inside what it names", "a: &a [1, *a]\nllm_routing: *a\n", r"x\.yaml: an alias refers to a value it is inside of"),
    ("not a mapping", "- just\n- a list\n", r"x\.yaml: must be a mapping at the top level"),
    ("not YAML", "llm_routing: [unclosed\n", r"x\.yaml:\d+:\d+: not valid YAML"),
    ("sub-dollar precision", GOOD_TIER.replace("budget_limit: 1.0", "budget_limit: 0.0000000001"), r"at most 9 decimals"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in BROKEN], ids=[n for n, _, _ in BROKEN])
def test_broken_configuration_names_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.yaml")


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(tmp_path / "a.yaml")


STRICT = [
    ("a key twice", GOOD_TIER.replace("    tier_1:\n", "    tier_1:\n      name: First\n", 1),
     r"x\.yaml:\d+: key \"name\" appears twice in one mapping \(first at line \d+\)"),
    ("a top-level typo", GOOD_TIER + "llm_routng:\n  optimization: {budget_limit: 5}\n",
     r"x\.yaml:\d+: llm_routng: unknown key \(did you mean 'llm_routing'\?"),
    ("a nested typo", GOOD_TIER.replace("    budget_limit: 1.0", "    budget_limimt: 1.0\n    budget_limit: 1.0"),
     r"x\.yaml:\d+: llm_routing\.optimization\.budget_limimt: unknown key \(did you mean 'budget_limit'\?"),
    ("a quoted number", GOOD_TIER.replace("budget_limit: 1.0", 'budget_limit: "1e3"'),
     r"budget_limit: must be a number .* \(it is quoted or not a YAML number"),
    ("mixed threshold scales", GOOD_TIER.replace("{simple: 0.5, complex: 1.0}", "{simple: 0.5, complex: 60}"),
     r"thresholds: mixes scales"),
    ("a zero budget", GOOD_TIER.replace("budget_limit: 1.0", "budget_limit: 0"),
     r"budget_limit: must be above 0: a zero budget leaves every paid tier unreachable"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in STRICT], ids=[n for n, _, _ in STRICT])
def test_strict_reading_refuses_what_would_silently_change_the_budget(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})


def test_exponent_numbers_are_numbers_as_in_yaml_1_2(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_TIER.replace("budget_limit: 1.0", "budget_limit: 1e3")), environ={})
    assert config.engine.ledger.limit_nd == 1000 * 10**9


def test_a_non_utf8_file_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(GOOD_TIER.encode().replace(b"name: Cheap", b"name: Caf\xe9"))
    with pytest.raises(ConfigError, match=r"x\.yaml:9: not UTF-8 \(byte \d+ is 0xe9\)"):
        load_config(path, environ={})


def test_an_error_in_a_base_file_is_reported_at_its_own_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, GOOD_TIER.replace("max_tokens: 100", "max_tokens: lots"), "base.yaml")
    child = write(tmp_path, "extends: base.yaml\nllm_routing:\n  optimization: {budget_limit: 2.0}\n", "child.yaml")
    with pytest.raises(ConfigError, match=r"base\.yaml:\d+: llm_routing\.model_tiers\.tier_1\.max_tokens"):
        load_config(child, environ={})
