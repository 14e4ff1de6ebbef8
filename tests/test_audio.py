"""Audio input: corpus files (synthetic and real speechocean762) and the errors bad files give."""

import numpy as np
import pytest
import soundfile

from apa.data.audio import SAMPLE_RATE, AudioError, check_audio, load_audio, split_into_chunks


def test_reads_real_upper_case_wav(recording):
    info = soundfile.info(recording)
    audio = load_audio(recording)
    assert recording.suffix == ".WAV"
    assert info.samplerate == SAMPLE_RATE and info.channels == 1
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape[0] == info.frames
    assert 0 < np.abs(audio).max() <= 1.0


def test_downmixes_and_resamples(tmp_path):
    seconds, rate = 1.5, 22_050
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, rate)
    audio = load_audio(path)
    assert audio.shape == (int(seconds * SAMPLE_RATE),)
    assert np.abs(audio).max() == pytest.approx(0.25, abs=0.01)  # mean of the two channels


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "audio file not found"),
        (lambda p: p.write_bytes(b"RIFF not really a wave file"), "not a readable audio file"),
        (lambda p: soundfile.write(p, np.zeros(0), SAMPLE_RATE), "empty"),
    ],
    ids=["missing", "corrupt", "empty"],
)
def test_bad_files_are_named(tmp_path, make, message):
    path = tmp_path / "bad.WAV"
    make(path)
    with pytest.raises(AudioError, match=message) as error:
        load_audio(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_named_where_audio_is_read(tmp_path, bad):
    samples = np.zeros(1600, dtype=np.float32)
    samples[[3, 700]] = bad
    path = tmp_path / "float.wav"
    soundfile.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
    for read in (load_audio, check_audio, lambda p: check_audio(p.read_bytes(), name=str(p))):
        with pytest.raises(AudioError, match=r"2 of 1600 samples are not finite \(NaN or infinity\)") as error:
            read(path)
        assert str(path) in str(error.value)
    soundfile.write(path, np.zeros(1600, dtype=np.float32), SAMPLE_RATE, subtype="FLOAT")
    assert check_audio(path) == pytest.approx(0.1) and np.isfinite(load_audio(path)).all()  # finite floats pass


def test_reads_bytes_like_a_file(recording):
    assert np.array_equal(load_audio(recording.read_bytes(), name="utt"), load_audio(recording))
    with pytest.raises(AudioError, match="utt: not a readable audio file"):
        load_audio(b"not audio", name="utt")


@pytest.mark.parametrize(("seconds", "chunks"), [(0.5, 1), (30.0, 1), (30.01, 2), (61.0, 3)])
def test_long_audio_is_split_into_equal_chunks(seconds, chunks):
    audio = np.arange(int(seconds * SAMPLE_RATE), dtype=np.float32)
    pieces = split_into_chunks(audio)
    assert len(pieces) == chunks
    assert all(len(p) <= 30 * SAMPLE_RATE for p in pieces)
    assert max(len(p) for p in pieces) - min(len(p) for p in pieces) <= 1
    assert np.array_equal(np.concatenate(pieces), audio)  # nothing lost, order kept


def truncated_copy(recording, path, keep_bytes: int):
    """The first ``keep_bytes`` of a real recording, its header still promising the whole."""
    path.write_bytes(recording.read_bytes()[:keep_bytes])
    return path


def test_truncated_wav_is_detected(recording, tmp_path):
    """A cut download: libsndfile reads the 100 samples that are there as a 0.006 s recording."""
    path = truncated_copy(recording, tmp_path / "cut.WAV", 44 + 200)
    assert soundfile.info(path).frames == 100  # what the file holds, silently
    promised = soundfile.info(recording).frames
    message = rf"cut\.WAV: truncated: the WAV header promises {promised} samples .* but the file holds 100 \(0\.006 s\)"
    with pytest.raises(AudioError, match=message):
        check_audio(path)
    with pytest.raises(AudioError, match="truncated"):
        load_audio(path)
    with pytest.raises(AudioError, match="utt: truncated"):
        check_audio(path.read_bytes(), name="utt")


def test_whole_wavs_pass_the_length_check(recording, tmp_path):
    assert check_audio(recording) == pytest.approx(soundfile.info(recording).duration)
    with_metadata = tmp_path / "tagged.wav"  # a LIST chunk after the data; odd-sized chunks are padded
    soundfile.write(with_metadata, np.zeros(1001, dtype=np.float32), SAMPLE_RATE, subtype="PCM_U8")
    with soundfile.SoundFile(with_metadata, "r+") as file:
        file.title = "odd"
    assert check_audio(with_metadata) == pytest.approx(1001 / SAMPLE_RATE)
    flac = tmp_path / "clip.flac"  # other formats are left to libsndfile
    soundfile.write(flac, np.zeros(1600, dtype=np.float32), SAMPLE_RATE)
    assert check_audio(flac) == pytest.approx(0.1)
