"""Settings changed between daemon runs: applied to the restored state, or refused by name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.daemon import CheckpointError, Daemon
from tests.detector._support import append_lines, drain
from tests.detector.test_daemon_guards import _config, _logons


def _checkpointed(folder: Path, days: int = 4, **daemon: Any) -> None:
    """A first run over ``days`` days of the eight users' logons, checkpointed and closed."""
    append_lines(folder / "logon.csv", _logons(0, days))
    first = Daemon(_config(folder, **daemon))
    drain(first)
    first.checkpoint()
    first.close()


def test_changed_scoring_settings_are_applied_on_resume(tmp_path: Path) -> None:
    _checkpointed(tmp_path)
    resumed = Daemon(
        _config(tmp_path, cold_start_windows=2, learn_flagged=True, risk_half_life_days=3.0)
    )
    scorer = resumed.scorer
    assert (scorer.cold_start_windows, scorer.learn_flagged) == (2, True)
    assert scorer.risk_config.half_life_days == 3.0
    # The rest of the risk configuration is the checkpoint's.
    assert (
        scorer.risk_config.surprise_floor
        == Daemon(_config(tmp_path)).scorer.risk_config.surprise_floor
    )
    resumed.close()


def test_a_changed_allowed_lateness_moves_the_watermark_on_resume(tmp_path: Path) -> None:
    _checkpointed(tmp_path)  # default lateness: 1 hour
    before = Daemon(_config(tmp_path))
    watermark = before.features.watermark
    before.close()
    assert watermark is not None
    resumed = Daemon(_config(tmp_path, allowed_lateness="3h"))
    assert resumed.features.allowed_lateness == timedelta(hours=3)
    assert resumed.features.watermark == watermark - timedelta(hours=2)
    resumed.close()


def test_a_lower_max_entities_evicts_after_resume(tmp_path: Path) -> None:
    _checkpointed(tmp_path, max_entities=8)
    resumed = Daemon(_config(tmp_path, max_entities=3))
    assert resumed.features.max_entities == 3
    append_lines(tmp_path / "logon.csv", _logons(4, 2))
    drain(resumed)
    # Eight users a day under a cap of three: five histories evicted at each closed day.
    assert resumed.features.entities == 3
    assert resumed.features.evictions >= 5
    resumed.close()


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (
            {"warmup_windows": 20},
            r"^daemon\.warmup_windows: .* written with warmup_windows 8 but the config gives 20;"
            r" .*\(it sized the score windows the checkpoint holds\)$",
        ),
    ],
)
def test_a_change_the_state_cannot_take_is_refused_by_name(
    tmp_path: Path, changed: dict[str, Any], message: str
) -> None:
    _checkpointed(tmp_path)
    with pytest.raises(CheckpointError, match=message) as caught:
        Daemon(_config(tmp_path, **changed))
    assert "\n" not in str(caught.value)
