"""W&B tracking: offline works, disabled is silent, and an unreachable W&B never ends a run."""

import time

import pytest
import wandb

from apa.tracking import WandbLogger


class FakeRun:
    url = "https://wandb.example/run"

    def __init__(self, mode):
        self.mode, self.finished_with, self.summary = mode, None, {}
        self.offline = mode == "offline"

    def finish(self, exit_code=0):
        self.finished_with = exit_code


@pytest.fixture
def fake_wandb(monkeypatch):
    """wandb.init that fails in the modes listed in ``failing`` and records every call."""
    calls, failing = [], set()

    def init(mode=None, **settings):
        calls.append(mode)
        if mode in failing:
            raise RuntimeError(f"cannot reach W&B in mode {mode}")
        return FakeRun(mode)

    monkeypatch.setattr(wandb, "init", init)
    return calls, failing


def test_offline_run_records_config_and_summary(tmp_path, capfd):
    logger = WandbLogger(project="apa-test", group="unit", tags=["t"], mode="offline")
    with logger.session({"seed": 3}, tmp_path) as tracker:
        shown = capfd.readouterr()
        assert "wandb:" not in shown.out + shown.err  # W&B's own banner and warnings: apa says where the run is
        folder = tracker.run.dir.rpartition("/files")[0]
        assert tracker.location == f"{folder} (offline; upload it with `wandb sync {folder}`)"
        tracker.log({"train/loss": 1.5}, step=1)
        tracker.summarize({"eval/pcc": 0.5})
        run = tracker.run
        assert run.config["seed"] == 3 and run.summary["eval/pcc"] == 0.5
        assert run.group == "unit" and list(run.tags) == ["t"]
    wandb.teardown()  # waits for W&B's service to write the record out (finish alone may not, under load)
    (record,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    assert b"eval/pcc" in record.read_bytes() and b"train/loss" in record.read_bytes()  # ready for `wandb sync`
    assert logger.run is None


def test_disabled_writes_nothing(tmp_path):
    logger = WandbLogger(mode="disabled")
    with logger.session({"seed": 3}, tmp_path) as tracker:
        tracker.log({"train/loss": 1.0})
    assert not (tmp_path / "wandb").exists()
    assert logger.report_to == [] and WandbLogger().report_to == ["wandb"]


def test_unreachable_online_falls_back_to_offline(fake_wandb, tmp_path):
    calls, failing = fake_wandb
    failing.add("online")
    logger = WandbLogger(mode="online")
    logger.start({}, tmp_path)
    assert calls == ["online", "offline"] and logger.run.mode == "offline"


def test_no_tracking_when_offline_fails_too(fake_wandb, tmp_path):
    calls, failing = fake_wandb
    failing.update({None, "offline"})
    logger = WandbLogger()
    logger.start({}, tmp_path)
    assert calls == [None, "offline", "disabled"] and logger.run.mode == "disabled"


def test_failed_job_marks_the_run_failed(fake_wandb, tmp_path):
    logger = WandbLogger(mode="offline")
    with pytest.raises(KeyError), logger.session({}, tmp_path):
        run = logger.run
        raise KeyError("boom")
    assert run.finished_with == 1 and logger.run is None


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match=r"logger\.mode='onlin'"):
        WandbLogger(mode="onlin")


def test_location_points_at_the_offline_run(tmp_path):
    logger = WandbLogger(mode="offline")
    with logger.session({}, tmp_path):
        pass
    assert logger.location.startswith(str(tmp_path / "wandb" / "offline-run-")) and "wandb sync" in logger.location


def test_the_wait_for_w_and_b_is_bounded_and_logged(fake_wandb, monkeypatch, tmp_path, caplog):
    _, failing = fake_wandb
    failing.add("online")
    seen = []
    init = wandb.init
    monkeypatch.setattr(wandb, "init", lambda **kw: seen.append(kw["settings"]) or init(**kw))
    logger = WandbLogger(mode="online", init_timeout=5)
    with caplog.at_level("INFO", logger="apa.tracking"):
        logger.start({}, tmp_path)
    assert [s.init_timeout for s in seen] == [5, 5] and logger.run.mode == "offline"
    assert "waiting at most logger.init_timeout=5 s" in caplog.text
    assert "could not start in mode online (waited at most logger.init_timeout=5 s)" in caplog.text


def test_a_bad_key_without_network_falls_back_to_offline(monkeypatch, tmp_path, caplog):
    """The real W&B, its server unreachable: it gives up after init_timeout, the run goes on offline."""
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    wandb.teardown()  # W&B reads the environment when it sets up
    logger = WandbLogger(mode="online", init_timeout=1)
    started = time.monotonic()
    try:
        with caplog.at_level("WARNING", logger="apa.tracking"), logger.session({}, tmp_path):
            gave_up_after = time.monotonic() - started
            assert logger.location.startswith(str(tmp_path / "wandb" / "offline-run-"))
    finally:
        wandb.teardown()
    assert "could not start in mode online (waited at most logger.init_timeout=1 s)" in caplog.text
    assert gave_up_after < 45  # a bound on the wait, not a speed claim: unbounded, W&B waits its own 90 s


@pytest.mark.parametrize("bad", [0, -5, "soon", True])
def test_bad_init_timeout_is_rejected(bad):
    with pytest.raises(ValueError, match=r"logger\.init_timeout="):
        WandbLogger(init_timeout=bad)
