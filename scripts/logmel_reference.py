"""Independent reference for listen's log-mel front-end, computed with PyTorch
(float64): frames of 480 samples every 160, periodic Hann, rfft of 512, power,
HTK-mel triangular filters (torchaudio's melscale_fbanks recipe, norm=None),
log(x + 1e-6). Writes tests/fixtures/logmel_reference.json.

    PYTHONPATH=.deps/python python3 scripts/logmel_reference.py
"""
import json, math, torch

sr, n_fft, win, hop, n_mels, f_min, f_max = 16000, 512, 480, 160, 40, 20.0, 7600.0
t = torch.arange(16000, dtype=torch.float64) / sr
x = (0.4 * torch.sin(2 * math.pi * 440 * t)
     + 0.3 * torch.sin(2 * math.pi * (100 * t + 2000 * t * t))
     + 0.1 * t * torch.sin(2 * math.pi * 3000 * t))

frames = x.unfold(0, win, hop)                       # [98, 480]
window = torch.hann_window(win, periodic=True, dtype=torch.float64)
spec = torch.fft.rfft(frames * window, n=n_fft)      # [98, 257]
power = spec.abs() ** 2

def hz_to_mel(f): return 2595.0 * math.log10(1.0 + f / 700.0)
all_freqs = torch.linspace(0, sr // 2, n_fft // 2 + 1, dtype=torch.float64)
m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
f_diff = f_pts[1:] - f_pts[:-1]
slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
down = -slopes[:, :-2] / f_diff[:-1]
up = slopes[:, 2:] / f_diff[1:]
fb = torch.clamp(torch.min(down, up), min=0)          # [257, 40]
logmel = torch.log(power @ fb + 1e-6)                 # [98, 40]

json.dump({"signal": "0.4 sin(2pi 440 t) + 0.3 sin(2pi (100 t + 2000 t^2)) + 0.1 t sin(2pi 3000 t), 1 s at 16 kHz",
           "frames": logmel.shape[0], "bins": logmel.shape[1],
           "logmel": [round(v, 6) for v in logmel.flatten().tolist()]},
          open("tests/fixtures/logmel_reference.json", "w"))
print("wrote", tuple(logmel.shape))
