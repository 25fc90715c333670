//! A file scored on every core: its 16 kHz audio is cut into parts of about 30 s, and
//! each part goes to a worker's own [`Scorer`] with the window's worth of audio before
//! it as warm-up. Parts start on the engine's hop grid (a whole number of model hops
//! from the start), so every window a worker keeps is computed from the same audio,
//! on the same grid, as one stream over the whole file computes it: the same
//! posteriors, up to float rounding. The caller gets them back in order.
use crate::live::engine::{Scored, Scorer};
use crate::model::Model;
use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Arc, Mutex};

/// Seconds of audio in one part (each also reads one window before it again).
const PART_SECONDS: u64 = 30;

/// A part: its number, the 16 kHz sample it starts at, its audio (warm-up included),
/// and the first window end it keeps (after its warm-up).
struct Part {
    index: u64,
    start: u64,
    keep_after: u64,
    audio: Vec<f32>,
}

/// Where parts begin and how long their warm-up is, in 16 kHz samples.
#[derive(Clone, Copy)]
struct Grid {
    part: u64,
    warm: u64,
    workers: u64,
}

impl Grid {
    fn for_scorer(s: &Scorer, workers: usize) -> Grid {
        let stride = s.stride();
        Grid {
            part: (PART_SECONDS * 16_000).div_ceil(stride) * stride,
            warm: s.window().div_ceil(stride) * stride,
            workers: workers as u64,
        }
    }
}

/// Scores the 16 kHz audio that `read` yields (None at its end) with `workers`
/// copies of `model`, hop `hop_ms`; `emit` sees every window in order (its end, as
/// a 16 kHz sample of the whole audio, and its posteriors) and returns false to stop.
pub fn score(
    model: &Model,
    hop_ms: u32,
    workers: usize,
    mut read: impl FnMut(&mut Vec<f32>) -> Result<bool>,
    mut emit: impl FnMut(u64, Vec<f32>) -> Result<bool>,
) -> Result<()> {
    let mut scorers = Vec::new();
    for _ in 0..workers.max(1) {
        scorers.push(Scorer::new(model.duplicate()?, hop_ms)?);
    }
    let grid = Grid::for_scorer(&scorers[0], scorers.len());
    let (jobs, queue) = sync_channel::<Part>(scorers.len());
    let queue = Arc::new(Mutex::new(queue));
    let (done, results) = channel::<(u64, Vec<Scored>)>();
    std::thread::scope(|scope| -> Result<()> {
        for mut scorer in scorers {
            let (queue, done) = (queue.clone(), done.clone());
            scope.spawn(move || work(&mut scorer, &queue, |r| done.send(r).is_ok()));
        }
        drop(done);
        let out = feed(grid, &mut read, jobs, &results, &mut emit);
        // Whatever happened, the workers stop once the queue closes (dropped in feed).
        out
    })
}

/// A worker: each part from a fresh (silent) start, keeping the windows after its warm-up.
fn work(
    scorer: &mut Scorer,
    queue: &Mutex<Receiver<Part>>,
    mut send: impl FnMut((u64, Vec<Scored>)) -> bool,
) {
    let mut scored = Vec::new();
    loop {
        let next = queue.lock().map(|q| q.recv());
        let Ok(Ok(part)) = next else { return };
        scorer.reset();
        scored.clear();
        scorer.push(&part.audio, &mut scored);
        let kept: Vec<Scored> = scored
            .drain(..)
            .map(|(end, p)| (part.start + end, p))
            .filter(|(end, _)| *end > part.keep_after)
            .collect();
        if !send((part.index, kept)) {
            return;
        }
    }
}

/// Reads the audio into parts, keeps at most two parts per worker in flight, and hands
/// the windows to `emit` in order.
fn feed(
    grid: Grid,
    read: &mut impl FnMut(&mut Vec<f32>) -> Result<bool>,
    jobs: std::sync::mpsc::SyncSender<Part>,
    results: &Receiver<(u64, Vec<Scored>)>,
    emit: &mut impl FnMut(u64, Vec<f32>) -> Result<bool>,
) -> Result<()> {
    let mut buf: Vec<f32> = Vec::new();
    let (mut sent, mut next_out, mut ended) = (0u64, 0u64, false);
    let mut waiting: BTreeMap<u64, Vec<Scored>> = BTreeMap::new();
    // The part being filled starts at `start` (16 kHz samples of the whole audio).
    let mut start = 0u64;
    let mut all_sent = false;
    loop {
        // Fill and send parts, at most two per worker ahead of what was handed on.
        while !all_sent && sent < next_out + 2 * grid.workers {
            let part_end = (sent + 1) * grid.part;
            while !ended && start + (buf.len() as u64) < part_end {
                ended = !read(&mut buf)?;
            }
            all_sent = ended && start + buf.len() as u64 <= part_end;
            let take = ((part_end - start) as usize).min(buf.len());
            let part = Part {
                index: sent,
                start,
                keep_after: sent * grid.part,
                audio: buf[..take].to_vec(),
            };
            // The next part starts one warm-up before this one ends.
            let next_start = part_end - grid.warm;
            if !all_sent {
                buf.drain(..(next_start - start) as usize);
                start = next_start;
            }
            jobs.send(part)
                .map_err(|_| anyhow!("a scoring thread stopped"))?;
            sent += 1;
        }
        if next_out == sent {
            return Ok(());
        }
        let (index, scored) = results
            .recv()
            .map_err(|_| anyhow!("a scoring thread stopped"))?;
        waiting.insert(index, scored);
        while let Some(scored) = waiting.remove(&next_out) {
            next_out += 1;
            for (end, p) in scored {
                if !emit(end, p)? {
                    return Ok(());
                }
            }
        }
    }
}
