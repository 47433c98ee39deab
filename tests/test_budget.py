import pytest
import torch

from srlib.budget import Budget, get_budget


def test_env_var_selects_budget(monkeypatch):
    for name in ("smoke", "cpu", "gpu"):
        monkeypatch.setenv("SRLIB_BUDGET", name)
        assert get_budget().name == name


def test_unset_budget_follows_cuda(monkeypatch):
    monkeypatch.delenv("SRLIB_BUDGET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_budget().name == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_budget().name == "gpu"


def test_bad_budget_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("SRLIB_BUDGET", "huge")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        get_budget()


def test_steps_scale_with_budget():
    assert Budget("smoke").steps(cpu=400) < Budget("cpu").steps(cpu=400) < Budget("gpu").steps(cpu=400)
    assert Budget("cpu").steps(cpu=400) == 400
    assert Budget("smoke").steps(cpu=2) == 2
    with pytest.raises(ValueError):
        Budget("cpu").steps(cpu=0)
    assert Budget("gpu").pick(smoke=1, cpu=2) == 2
