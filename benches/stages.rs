//! Where a second of listening goes: each stage of the live path timed on its own over
//! the same minute of test-split speakers (`listen --make-stream`), in the sizes live
//! listening uses (the device's 10-ms blocks, the worker's 100-ms reads, one 80-ms hop
//! at a time), then the whole engine, then `--input` on one and on every core.
//!
//!   cargo bench --bench stages
//!
//! Prints a table (milliseconds of one core per second of audio, and that as a share
//! of the core), writes it into BENCHMARKS.md between `<!-- stages:begin -->` and
//! `<!-- stages:end -->`, and writes target/bench/stages.json.
mod common;
use listen::audio::embedding::{EmbeddingStream, SpeechFrontEnd, MEL_BINS, MEL_HOP, N_FFT};
use listen::audio::wav::read_mono_16k;
use listen::live::capture::{push_frames, read_frames, ring};
use listen::live::detect::Detector;
use listen::live::engine::{Converter, Engine, EngineConfig};
use listen::model::Model;
use std::time::Instant;
use tch::Tensor;

/// CPU seconds this thread has used.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// The median of three runs of `f`, in seconds.
fn timed(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..3)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[1]
}

fn main() {
    tch::set_num_threads(1);
    let Some(wav) = common::test_stream("stages-stream", 1.0, 4) else {
        return;
    };
    let x16 = read_mono_16k(&wav, 600.0).unwrap();
    let secs = x16.len() as f64 / 16_000.0;
    // The device's side: 48 kHz stereo, as the virtual microphone delivers it.
    let x48 = listen::audio::resample::resample_clip(&x16, 16_000, 48_000).unwrap();
    let stereo: Vec<f32> = x48.iter().flat_map(|&v| [v, v]).collect();
    let as_i16: Vec<i16> = stereo.iter().map(|v| (v * 32767.0) as i16).collect();
    let model = Model::bundled().unwrap();
    let mut fe = SpeechFrontEnd::load().unwrap();
    let mut rows: Vec<(&str, f64)> = Vec::new();

    // Capture: the callback converts and copies into the ring; the worker reads it.
    rows.push((
        "capture: callback copy + worker read",
        timed(|| {
            let (mut prod, mut cons, stats) = ring(48_000, 2, 2.0);
            let mut out = Vec::new();
            for (i, block) in as_i16.chunks(480 * 2).enumerate() {
                push_frames(&mut prod, &stats, 2, block);
                if i % 10 == 9 {
                    read_frames(&mut cons, 2, &mut out, usize::MAX);
                }
            }
        }),
    ));
    // Mixing down and resampling to 16 kHz, 100 ms at a time.
    rows.push((
        "mono + resampling 48 -> 16 kHz",
        timed(|| {
            let mut c = Converter::new(48_000, 2).unwrap();
            for block in stereo.chunks(4_800 * 2) {
                c.push(block).unwrap();
            }
        }),
    ));
    // Mel frames, each once.
    let mut mel = vec![0f32; (listen::audio::embedding::frames_in(x16.len())) * MEL_BINS];
    rows.push((
        "mel (32 bins every 10 ms)",
        timed(|| {
            for (t, row) in mel.chunks_mut(MEL_BINS).enumerate() {
                fe.mel
                    .frame_into(&x16[t * MEL_HOP..t * MEL_HOP + N_FFT], row);
            }
        }),
    ));
    // The embedding network, streamed one 80-ms hop (8 mel frames) at a time.
    let mel_t = Tensor::from_slice(&mel).view([1, -1, MEL_BINS as i64]);
    let hops = mel_t.size()[1] / 8;
    let mut embeddings = Vec::new();
    rows.push((
        "speech embedding, streamed per hop",
        timed(|| {
            let mut state = EmbeddingStream::default();
            embeddings.clear();
            for h in 0..hops {
                let e = tch::no_grad(|| fe.net.stream(&mut state, &mel_t.narrow(1, h * 8, 8)));
                if e.size()[0] > 0 {
                    embeddings.push(e);
                }
            }
        }),
    ));
    rows.push((
        "  (the same, whole 775-ms window per hop)",
        timed(|| {
            for h in 0..(hops - 10) {
                let _ = tch::no_grad(|| fe.net.forward(&mel_t.narrow(1, h * 8, 76)));
            }
        }) * hops as f64
            / (hops - 10) as f64,
    ));
    // The heads, one window per hop (normalised frames: the window's 16 embeddings).
    let f = &model.card.features;
    let emb = Tensor::cat(&embeddings, 0);
    let windows = emb.size()[0] - f.n_frames() as i64;
    let mean = Tensor::from_slice(&model.card.normalisation.mean);
    let std = Tensor::from_slice(&model.card.normalisation.std);
    let normalised = (emb - mean) / std;
    let fused = model
        .fused()
        .expect("the bundled model is an embedding head");
    let mut posteriors = Vec::new();
    rows.push((
        "heads (fused), one window per hop",
        timed(|| {
            posteriors.clear();
            for w in 0..windows {
                let x = normalised.narrow(0, w, f.n_frames() as i64).unsqueeze(0);
                let p = tch::no_grad(|| fused.probabilities(&x));
                posteriors.push(Vec::<f32>::try_from(p.flatten(0, -1)).unwrap());
            }
        }) * hops as f64
            / windows as f64,
    ));
    rows.push((
        "  (the same, unfused)",
        timed(|| {
            for w in 0..windows {
                let x = normalised.narrow(0, w, f.n_frames() as i64).unsqueeze(0);
                let _ = tch::no_grad(|| model.forward_t(&x, false).softmax(-1, tch::Kind::Float));
            }
        }) * hops as f64
            / windows as f64,
    ));
    rows.push((
        "detector",
        timed(|| {
            let mut d = Detector::new(&model.card.labels, model.card.detector.clone().unwrap());
            for (i, p) in posteriors.iter().enumerate() {
                let _ = std::hint::black_box(d.update(p, i as u64 * 80));
            }
        }),
    ));
    let stages: f64 = rows
        .iter()
        .filter(|(n, _)| !n.starts_with(' '))
        .map(|r| r.1)
        .sum();
    // The whole engine as live listening runs it: 40-ms reads of 48 kHz stereo (the
    // pace at which the virtual microphone delivers).
    let engine = timed(|| {
        let cfg = EngineConfig {
            detector: model.card.detector.clone().unwrap(),
            ..Default::default()
        };
        let mut e = Engine::new(model.duplicate().unwrap(), 48_000, 2, cfg).unwrap();
        let mut out = Vec::new();
        for block in stereo.chunks(1_920 * 2) {
            e.push(block, &mut out).unwrap();
        }
    });
    // The same at the pace audio arrives (a 40-ms push, then a 40-ms sleep): the CPU
    // time of this thread alone. Between pushes the caches go cold; live listening
    // pays that too.
    let paced_secs = 20.0;
    let paced = {
        let cfg = EngineConfig {
            detector: model.card.detector.clone().unwrap(),
            ..Default::default()
        };
        let mut e = Engine::new(model.duplicate().unwrap(), 48_000, 2, cfg).unwrap();
        let mut out = Vec::new();
        let c0 = thread_cpu();
        for block in stereo.chunks(1_920 * 2).take((paced_secs * 25.0) as usize) {
            e.push(block, &mut out).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(40));
        }
        thread_cpu() - c0
    };
    let row = |name: &str, ms: f64| format!("| {name} | {ms:.2} | {:.2}% |\n", ms / 10.0);
    let mut md = format!(
        "Machine: {}. `cargo bench --bench stages`: each stage alone over the same {secs:.0} s of test-split speakers (`--make-stream --split test --seed 4`), in live sizes; milliseconds of one core per second of audio (the median of 3 runs).\n\n| stage | ms per s of audio | share of one core |\n|---|---|---|\n",
        listen::util::machine()
    );
    for (name, t) in &rows {
        md += &row(&name.replace("  (", "&nbsp;&nbsp;(")[..], t / secs * 1000.0);
    }
    md += &row("**sum of the stages**", stages / secs * 1000.0);
    md += &row(
        "the whole engine, 40-ms pushes back to back",
        engine / secs * 1000.0,
    );
    md += &row(
        &format!("**the whole engine at real-time pace** (40 ms of audio every 40 ms, {paced_secs:.0} s; this thread's CPU time)"),
        paced / paced_secs * 1000.0,
    );

    // --input: the whole binary on a longer file, on one core and on every core.
    let long = common::test_stream("test-each-stages", 10.0, 5).unwrap();
    let mut input = Vec::new();
    for threads in ["1", "2"] {
        let t = timed(|| {
            let o = std::process::Command::new(common::bin())
                .args([
                    "--input",
                    long.to_str().unwrap(),
                    "--json",
                    "--quiet",
                    "--threads",
                    threads,
                ])
                .output()
                .unwrap();
            assert!(o.status.success());
        });
        input.push((threads, 600.0 / t));
        println!(
            "--input, {threads} thread(s): {:.0}x real time ({t:.2} s for 10 min)",
            600.0 / t
        );
    }
    md += "\n| `--input` (10 minutes of test-split speakers, the whole binary) | real time |\n|---|---|\n";
    for (threads, x) in &input {
        md += &format!("| `--threads {threads}` | {x:.0}x |\n");
    }
    println!("\n{md}");
    listen::util::replace_section(&common::root().join("BENCHMARKS.md"), "stages", &md).unwrap();
    let json = serde_json::json!({
        "machine": listen::util::machine(),
        "audio_seconds": secs,
        "ms_per_second_of_audio": rows.iter().map(|(n, t)| serde_json::json!({"stage": n.trim(), "ms": t / secs * 1000.0})).collect::<Vec<_>>(),
        "sum_ms": stages / secs * 1000.0,
        "engine_ms": engine / secs * 1000.0,
        "engine_paced_ms": paced / paced_secs * 1000.0,
        "input_x_real_time": input.iter().map(|(t, x)| serde_json::json!({"threads": t, "x": x})).collect::<Vec<_>>(),
    });
    let out = common::root().join("target/bench/stages.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("wrote {}", out.display());
}
