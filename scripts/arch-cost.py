"""What a network would cost to train and run on this machine, before building it in Rust:
one AdamW step on a batch of 64 windows and one forward pass of a single window (the
live case), for the bundled TC-ResNet, the same after a 2-D frequency stem, and
BC-ResNet (Kim et al. 2021) at several widths. Windows are 1.4 s: 140 frames x 40 mels.

    PYTHONPATH=.deps/python python3 scripts/arch-cost.py

Random weights and inputs: this measures time, not accuracy (BENCHMARKS.md, "Later tries").
"""
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
FRAMES, BINS, LABELS = 140, 40, 10


class ConvBn1(nn.Module):
    def __init__(self, i, o, k, stride):
        super().__init__()
        self.conv = nn.Conv1d(i, o, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x):
        return self.bn(self.conv(x))


class TcResnet(nn.Module):
    """src/model.rs's TC-ResNet (tcresnet-wide: channels 32-48-64-80, kernel 9)."""

    def __init__(self, channels=(32, 48, 64, 80), kernel=9, bins=BINS):
        super().__init__()
        self.stem = ConvBn1(bins, channels[0], 3, 1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([ConvBn1(a, b, kernel, 2), ConvBn1(b, b, kernel, 1), ConvBn1(a, b, 1, 2)])
            for a, b in zip(channels, channels[1:])
        )
        self.fc = nn.Linear(channels[-1], LABELS)

    def forward(self, x):  # [batch, frames, bins]
        x = F.relu(self.stem(x.transpose(1, 2)))
        for a, b, shortcut in self.blocks:
            x = F.relu(b(F.relu(a(x))) + shortcut(x))
        return self.fc(x.mean(2))


class FreqStem(nn.Module):
    """3x3 convolutions over (frequency, time), the first striding over frequency, then
    TC-ResNet over channels x rows (the tcresnet-freq of commit 3c29171: 8, 2, 4)."""

    def __init__(self, channels=8, layers=2, stride=4):
        super().__init__()
        convs, c = [], 1
        for i in range(layers):
            convs += [nn.Conv2d(c, channels, 3, (stride if i == 0 else 1, 1), 1, bias=False),
                      nn.BatchNorm2d(channels), nn.ReLU()]
            c = channels
        self.freq = nn.Sequential(*convs)
        self.tc = TcResnet(bins=channels * -(-BINS // stride))

    def forward(self, x):
        y = self.freq(x.transpose(1, 2).unsqueeze(1))
        b, c, f, t = y.shape
        return self.tc(y.reshape(b, c * f, t).transpose(1, 2))


class SubSpectralNorm(nn.Module):
    def __init__(self, c, sub=5):
        super().__init__()
        self.sub, self.bn = sub, nn.BatchNorm2d(c * sub)

    def forward(self, x):
        b, c, f, t = x.shape
        return self.bn(x.reshape(b, c * self.sub, f // self.sub, t)).reshape(b, c, f, t)


class BcBlock(nn.Module):
    """Broadcasted residual block: a frequency-wise depthwise conv with SubSpectralNorm,
    averaged over frequency, a temporal depthwise conv, broadcast back."""

    def __init__(self, i, o, freq_stride, dilation):
        super().__init__()
        self.transition = i != o
        if self.transition:
            self.pre = nn.Sequential(nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
        self.freq = nn.Conv2d(o, o, (3, 1), (freq_stride, 1), (1, 0), groups=o, bias=False)
        self.ssn = SubSpectralNorm(o)
        self.time = nn.Conv2d(o, o, (1, 3), 1, (0, dilation), dilation=(1, dilation), groups=o, bias=False)
        self.bn, self.pw, self.drop = nn.BatchNorm2d(o), nn.Conv2d(o, o, 1, bias=False), nn.Dropout2d(0.1)

    def forward(self, x):
        if self.transition:
            x = self.pre(x)
        f2 = self.ssn(self.freq(x))
        y = self.drop(self.pw(F.silu(self.bn(self.time(f2.mean(2, keepdim=True))))))
        out = f2 + y
        if not self.transition and self.freq.stride[0] == 1:
            out = out + x
        return F.relu(out)


class BcResnet(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 2 * c, 5, (2, 1), 2, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU())
        stages = [(2, 1, 1, c), (2, 2, 2, int(1.5 * c)), (4, 1, 4, 2 * c), (4, 1, 8, int(2.5 * c))]
        blocks, cin = [], 2 * c
        for n, stride, dilation, cout in stages:
            for j in range(n):
                blocks.append(BcBlock(cin, cout, stride if j == 0 else 1, dilation))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, cin, 5, padding=(0, 2), groups=cin, bias=False),
                                  nn.Conv2d(cin, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c), nn.ReLU())
        self.fc = nn.Conv2d(4 * c, LABELS, 1)

    def forward(self, x):
        x = self.blocks(self.stem(x.transpose(1, 2).unsqueeze(1)))
        return self.fc(self.head(x).mean((2, 3), keepdim=True)).flatten(1)


def cost(name, model):
    params = sum(p.numel() for p in model.parameters())
    x, y = torch.randn(64, FRAMES, BINS), torch.randint(0, LABELS, (64,))
    opt = torch.optim.AdamW(model.parameters())

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t = time.time()
    for _ in range(5):
        step()
    train_ms = (time.time() - t) / 5 * 1000
    model.eval()
    one = torch.randn(1, FRAMES, BINS)
    with torch.no_grad():
        for _ in range(5):
            model(one)
        t = time.time()
        for _ in range(50):
            model(one)
    window_ms = (time.time() - t) / 50 * 1000
    print(f"{name:28} {params:>8} parameters  train step {train_ms:5.0f} ms  one window {window_ms:5.2f} ms", flush=True)


cost("tcresnet-wide (bundled)", TcResnet())
cost("tcresnet-freq", FreqStem())
for width in (4, 8, 16):
    cost(f"bc-resnet-{width / 8:g}", BcResnet(width))
