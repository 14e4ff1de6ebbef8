"""Audio input: real speechocean762 files and the errors bad files give."""

import numpy as np
import pytest
import soundfile

from apa.data.audio import SAMPLE_RATE, AudioError, load_audio, split_into_chunks


def test_reads_real_upper_case_wav(real_wav):
    info = soundfile.info(real_wav)
    audio = load_audio(real_wav)
    assert real_wav.suffix == ".WAV"
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


def test_reads_bytes_like_a_file(real_wav):
    assert np.array_equal(load_audio(real_wav.read_bytes(), name="utt"), load_audio(real_wav))
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
