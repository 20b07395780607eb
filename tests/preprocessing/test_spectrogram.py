"""preprocessing/spectrogram.py and the input pipeline's log-mel features."""

import librosa
import numpy as np
import pytest

from preprocessing import audio_io
from preprocessing import input_pipeline
from preprocessing import spectrogram
from tests import helpers


def _waveforms(lengths, seed=0, padding_value=0.0):
    """float32 [B, max(lengths)]: a tone plus noise per row (every mel band
    gets energy), `padding_value` noise past each length."""
    rng = np.random.default_rng(seed)
    width = max(max(lengths), 1)
    batch = (padding_value * rng.standard_normal((len(lengths), width))
             ).astype(np.float32)
    t = np.arange(width) / spectrogram.SAMPLE_RATE
    for row, length in enumerate(lengths):
        batch[row, :length] = (
            0.3 * np.sin(2 * np.pi * (120 + 40 * row) * t[:length])
            + 0.05 * rng.standard_normal(length))
    return batch


def _reference(x, n_mels):
    """numpy/librosa in float64, the same framing: valid 400-sample frames
    every 160, periodic Hann, |rfft_512|², librosa mel, log with floor."""
    x = np.asarray(x, np.float64)
    if len(x) < spectrogram.FRAME_LENGTH:
        return np.zeros((0, n_mels))
    frames = np.lib.stride_tricks.sliding_window_view(
        x, spectrogram.FRAME_LENGTH)[::spectrogram.FRAME_STEP]
    window = librosa.filters.get_window("hann", spectrogram.FRAME_LENGTH,
                                        fftbins=True)
    power = np.abs(np.fft.rfft(frames * window, spectrogram.N_FFT)) ** 2
    mel = power @ librosa.filters.mel(sr=16000, n_fft=512,
                                      n_mels=n_mels).T.astype(np.float64)
    return np.log(np.maximum(mel, spectrogram.LOG_FLOOR))


@pytest.mark.parametrize("n_mels", [64, 20])
def test_matches_a_numpy_librosa_reference(n_mels):
    lengths = [16000, 4000, 401, 560, 12345]
    log_mel, frames = spectrogram.log_mel_spectrogram(_waveforms(lengths),
                                                      lengths, n_mels)
    log_mel, frames = log_mel.numpy(), frames.numpy()
    assert log_mel.shape == (5, 1 + (16000 - 400) // 160, n_mels)
    # The MFCC framing: as many log-mel frames as MFCC frames.
    np.testing.assert_array_equal(
        frames, [audio_io.num_frames(n) for n in lengths])
    for row, length in enumerate(lengths):
        expected = _reference(_waveforms(lengths)[row, :length], n_mels)
        assert len(expected) == frames[row]
        # float32 FFT against float64: measured max |diff| ~5e-6.
        np.testing.assert_allclose(log_mel[row, :frames[row]], expected,
                                   atol=5e-5, rtol=0)
        assert not log_mel[row, frames[row]:].any()


def test_padded_batch_gives_each_utterance_its_unpadded_spectrogram():
    lengths = [7000, 3000, 400, 399, 0]
    # Loud noise past each length: no real frame may read it.
    batch = _waveforms(lengths, seed=1, padding_value=10.0)
    together, frames = spectrogram.log_mel_spectrogram(batch, lengths, 16)
    together, frames = together.numpy(), frames.numpy()
    np.testing.assert_array_equal(frames, [42, 17, 1, 0, 0])
    for row, length in enumerate(lengths):
        alone, alone_frames = spectrogram.log_mel_spectrogram(
            batch[row:row + 1, :length], [length], 16)
        assert int(alone_frames[0]) == frames[row]
        assert alone.shape[1] == frames[row]
        np.testing.assert_allclose(together[row, :frames[row]],
                                   alone.numpy()[0], atol=1e-6, rtol=0)
        assert not together[row, frames[row]:].any()


def test_batches_shorter_than_a_frame_and_sample_counts():
    log_mel, frames = spectrogram.log_mel_spectrogram(
        np.ones((2, 300), np.float32), [300, 10])
    assert log_mel.shape == (2, 0, spectrogram.N_MELS)
    np.testing.assert_array_equal(frames, [0, 0])
    for count in (1, 2, 750):
        samples = spectrogram.samples_for_frames(count)
        assert spectrogram.num_frames(samples) == count
        assert spectrogram.num_frames(samples - 1) == count - 1
    assert spectrogram.parameters(32)["n_mels"] == 32
    with pytest.raises(ValueError, match="n_mels"):
        spectrogram.mel_matrix(0)


def test_pipeline_computes_log_mel_from_the_waveform_extras(demo_fold):
    split = demo_fold.splits["dev"]
    pcm, pcm_lengths = (split.extras["waveform"],
                        split.extras["waveform_length"])
    dataset = input_pipeline.make_dataset(split, 8, log_mel=True, n_mels=24,
                                          audio_max_frames=120,
                                          crop_multiple=50)
    spec = dataset.element_spec[0]
    assert spec["audio_logmel"].shape.as_list() == [None, None, 24]
    features, _ = next(iter(dataset))
    assert "waveform" not in features  # only asked-for features
    log_mel = features["audio_logmel"].numpy()
    lengths = features["audio_logmel_length"].numpy()
    assert log_mel.dtype == np.float32 and lengths.dtype == np.int32
    # The MFCC framing, so the MFCC frame counts, clipped the same way.
    np.testing.assert_array_equal(lengths, features["audio_length"])
    assert log_mel.shape[1] == min(-(-lengths.max() // 50) * 50, 120)
    for row in range(8):
        alone, _ = spectrogram.log_mel_spectrogram(
            pcm[row:row + 1, :pcm_lengths[row]] / 32768.0,
            [pcm_lengths[row]], 24)
        np.testing.assert_allclose(log_mel[row, :lengths[row]],
                                   alone.numpy()[0, :lengths[row]],
                                   atol=1e-5, rtol=0)
        assert not log_mel[row, lengths[row]:].any()
    # With the waveform features too: those keep their own (no) limit.
    both, _ = next(iter(input_pipeline.make_dataset(
        split, 8, log_mel=True, n_mels=24, audio_max_frames=120,
        waveforms=True)))
    np.testing.assert_array_equal(both["audio_logmel"], log_mel)
    np.testing.assert_array_equal(both["waveform_length"], pcm_lengths[:8])


def test_pipeline_log_mel_needs_waveforms():
    split = helpers.random_split(5)
    with pytest.raises(ValueError, match="no .*'waveform'"):
        input_pipeline.make_dataset(split, 4, log_mel=True)
    split.extras.update(waveform=np.zeros((5, 800), np.int16),
                        waveform_length=np.full(5, 800, np.int32),
                        audio_logmel=np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="clash"):
        input_pipeline.make_dataset(split, 4, log_mel=True,
                                    extras=["audio_logmel"])
