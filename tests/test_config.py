from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli

from evolve.config import ConfigError, RunConfig, defaults_yaml, load_config


def test_defaults_yaml_matches_code_defaults() -> None:
    assert yaml.safe_load((REPO / "configs" / "defaults.yaml").read_text()) == RunConfig().model_dump(mode="json")
    assert (REPO / "configs" / "defaults.yaml").read_text() == defaults_yaml()


def test_every_shipped_config_loads() -> None:
    for path in (REPO / "configs").glob("*.yaml"):
        load_config(path)


def test_set_reaches_nested_keys_and_parses_values(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        [
            "islands.selection.exploit_ratio=0.25",
            "budget.max_wall_seconds=12.5",
            "problem.options={dim: 3}",
            "evaluator.backend=ray",
        ],
    )
    assert cfg.islands.selection.exploit_ratio == 0.25
    assert cfg.budget.max_wall_seconds == 12.5
    assert cfg.problem.options == {"dim": 3}
    assert cfg.evaluator.backend == "ray"


@pytest.mark.parametrize(
    "override, needle",
    [
        ("islands.nope=1", "islands.nope"),
        ("budget.max_evaluations=-3", "budget.max_evaluations"),
        ("evaluator.backend=docker", "evaluator.backend"),
        ("operators.weights={}", "operators.weights"),
    ],
)
def test_bad_override_names_the_key(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(None, [override])


@pytest.mark.slow
def test_unknown_key_in_file_is_exit_2_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("budget:\n  max_evaluations: 10\n  max_evalutions: 5\n")
    proc = run_cli("run", str(cfg), "--run-dir", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2
    assert "bad.yaml" in proc.stderr and "budget.max_evalutions" in proc.stderr and "unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_unknown_operator_and_problem_are_clear_errors(tmp_path: Path) -> None:
    proc = run_cli("run", "--run-dir", str(tmp_path / "a"), "--set", "operators.weights={warp_drive: 1}", check=False)
    assert proc.returncode == 2 and "warp_drive" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("run", "--run-dir", str(tmp_path / "b"), "--set", "problem.name=nope", check=False)
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("run", "--run-dir", str(tmp_path / "c"), "--problem", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2 and "missing" in proc.stderr


def test_an_archive_written_before_sandbox_v2_still_loads_its_config() -> None:
    from evolve.config import EvaluatorConfig

    assert EvaluatorConfig(isolation=True).isolation == "bubblewrap"  # type: ignore[arg-type]
    assert EvaluatorConfig(isolation=False).isolation == "none"  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EvaluatorConfig(isolation="docker")  # type: ignore[arg-type]
