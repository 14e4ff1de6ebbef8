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


class RecordingRun(FakeRun):
    """A run that keeps what is logged to it."""

    def __init__(self, mode="offline"):
        super().__init__(mode)
        self.logged, self.artifacts = [], []

    def log(self, values, step=None):
        self.logged.append(values)

    def log_artifact(self, artifact):
        self.artifacts.append(artifact)


def test_a_table_over_w_and_bs_row_limit_is_logged_in_parts_not_cut(monkeypatch, caplog):
    import apa.tracking

    monkeypatch.setattr(apa.tracking, "TABLE_ROWS", 3)
    logger = WandbLogger(mode="offline")
    logger.run = RecordingRun()
    rows = [[f"u{i}", i] for i in range(7)]
    logger.log_table("eval/predictions/phone", ["item", "value"], rows)
    (logged,) = logger.run.logged
    assert sorted(logged) == [f"eval/predictions/phone/part{i}" for i in (1, 2, 3)]
    assert [row for part in sorted(logged) for row in logged[part].data] == rows  # every row, in order
    assert "W&B tables hold at most 3 rows: eval/predictions/phone (7 rows)" in caplog.text


def test_evaluation_logs_intervals_a_table_per_granularity_and_its_files(tmp_path):
    from apa.data.records import Scores, WordScores
    from apa.evaluation.report import predictions_json, write_json
    from apa.evaluation.run import score

    def words(accuracy):
        return (WordScores("HI", accuracy, 10, accuracy, ("HH", "AY0"), (2.0, accuracy / 5)),)

    references = {f"u{i}": Scores(i % 7 + 3, 8, 8, 10, i % 5 + 4, words=words(i % 3 + 7)) for i in range(12)}
    predictions = {
        u: Scores(s.accuracy + 0.5, 8, 8, 10, s.total, words=words(s.words[0].accuracy)) for u, s in references.items()
    }
    for name, scores in (("predictions.json", predictions), ("references.json", references)):
        write_json(tmp_path / name, predictions_json(scores))
    logger = WandbLogger(mode="offline")
    logger.run = RecordingRun()
    report = score(predictions, references, tmp_path, logger, resamples=50)
    summary = logger.run.summary
    assert summary["eval/sentence/total/pcc"] == report.metrics["sentence/total/pcc"]
    assert [summary["eval/sentence/total/pcc/ci95_low"], summary["eval/sentence/total/pcc/ci95_high"]] == report.ci95[
        "sentence/total/pcc"
    ]
    tables = {name for values in logger.run.logged for name in values if name.startswith("eval/predictions/")}
    assert tables == {"eval/predictions/sentence", "eval/predictions/word", "eval/predictions/phone"}
    (artifact,) = logger.run.artifacts
    assert artifact.type == "evaluation" and {"predictions.json", "references.json", "metrics.json"} <= set(
        artifact.manifest.entries
    )
