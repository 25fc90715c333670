//! Scoring a stream's detections against its truth (`--truth`), and the threshold
//! sweep (`--sweep`) that picks the detector's defaults. A detection belongs to a spoken
//! word when it falls between the word's start and `tolerance_ms` after its end.
//!
//! - correct: a keyword said, and reported with its label (the first such detection);
//! - wrong: a keyword said, reported only as another command;
//! - missed: a keyword said, nothing reported;
//! - false alarm: any other detection (on noise, on a word that is not a command, or a
//!   second detection of one word).
//!
//! Recall = correct / keywords; false alarms per hour counts false alarms and wrong labels
//! (each is a command the user did not give).
use crate::live::detect::{Detection, Detector, DetectorConfig};
use crate::measure::streams::{TruthWord, SPEECH_LABEL};
use crate::util::median;
use serde::Serialize;

pub const DEFAULT_TOLERANCE_MS: u64 = 1000;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Score {
    pub keywords: usize,
    pub non_keywords: usize,
    pub correct: usize,
    pub wrong: usize,
    pub missed: usize,
    pub false_alarms: usize,
    pub duration_s: f64,
    pub recall: f64,
    pub miss_rate: f64,
    pub false_alarms_per_hour: f64,
    /// 95% interval of the false-alarm rate per hour (exact Poisson, Garwood 1936): how
    /// far the rate could be from the count that one stream happened to give.
    pub false_alarms_per_hour_95: (f64, f64),
    /// Median of (detection time - end of the word) over correct detections.
    pub median_latency_ms: Option<f64>,
}

/// Which spoken word each detection belongs to: the word whose window holds it (the
/// nearest end if several); detections no word holds are `unowned`.
struct Assignment<'a> {
    by_word: Vec<Vec<&'a Detection>>,
    unowned: Vec<&'a Detection>,
}

fn assign<'a>(
    truth: &[TruthWord],
    detections: &'a [Detection],
    tolerance_ms: u64,
) -> Assignment<'a> {
    let mut a = Assignment {
        by_word: vec![Vec::new(); truth.len()],
        unowned: Vec::new(),
    };
    for d in detections {
        let owner = truth
            .iter()
            .enumerate()
            .filter(|(_, w)| d.time_ms >= w.start_ms && d.time_ms <= w.end_ms + tolerance_ms)
            .min_by_key(|(_, w)| w.end_ms.abs_diff(d.time_ms))
            .map(|(i, _)| i);
        match owner {
            Some(i) => a.by_word[i].push(d),
            None => a.unowned.push(d),
        }
    }
    a
}

pub fn score(
    truth: &[TruthWord],
    detections: &[Detection],
    commands: &[String],
    tolerance_ms: u64,
    duration_s: f64,
) -> Score {
    let is_kw = |l: &str| commands.iter().any(|c| c == l);
    let Assignment { by_word, unowned } = assign(truth, detections, tolerance_ms);
    let mut s = Score {
        duration_s,
        false_alarms: unowned.len(),
        ..Default::default()
    };
    let mut latencies = Vec::new();
    for (w, ds) in truth.iter().zip(&by_word) {
        if !is_kw(&w.label) {
            s.non_keywords += 1;
            s.false_alarms += ds.len();
            continue;
        }
        s.keywords += 1;
        if let Some(hit) = ds.iter().find(|d| d.label == w.label) {
            s.correct += 1;
            latencies.push(hit.time_ms as f64 - w.end_ms as f64);
            s.false_alarms += ds.len() - 1;
        } else if !ds.is_empty() {
            s.wrong += 1;
            s.false_alarms += ds.len() - 1;
        } else {
            s.missed += 1;
        }
    }
    if s.keywords > 0 {
        s.recall = s.correct as f64 / s.keywords as f64;
        s.miss_rate = 1.0 - s.recall;
    }
    if duration_s > 0.0 {
        let n = s.false_alarms + s.wrong;
        let hours = duration_s / 3600.0;
        s.false_alarms_per_hour = n as f64 / hours;
        let (lo, hi) = poisson_interval(n as u64);
        s.false_alarms_per_hour_95 = (lo / hours, hi / hours);
    }
    if !latencies.is_empty() {
        s.median_latency_ms = Some(median(&latencies));
    }
    s
}

/// One thing a run got wrong, for a person to look up in the recording.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mistake {
    /// A command said and not reported.
    Missed { label: String, start_ms: u64 },
    /// A command said and reported only as another one.
    Wrong {
        label: String,
        heard: String,
        time_ms: u64,
    },
    /// A detection where no command was said: `during` names the word said there, if any.
    FalseAlarm {
        heard: String,
        time_ms: u64,
        during: Option<String>,
    },
}

impl std::fmt::Display for Mistake {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let at = |ms: &u64| format!("{:.2} s", *ms as f64 / 1000.0);
        match self {
            Mistake::Missed { label, start_ms } => write!(f, "{}  missed {label}", at(start_ms)),
            Mistake::Wrong {
                label,
                heard,
                time_ms,
            } => {
                write!(f, "{}  {label} heard as {heard}", at(time_ms))
            }
            Mistake::FalseAlarm {
                heard,
                time_ms,
                during,
            } => match during.as_deref() {
                Some(SPEECH_LABEL) => {
                    write!(f, "{}  false alarm {heard} (during speech)", at(time_ms))
                }
                Some(w) => write!(f, "{}  false alarm {heard} (said: {w})", at(time_ms)),
                None => write!(f, "{}  false alarm {heard}", at(time_ms)),
            },
        }
    }
}

/// Every mistake of a run, in the order of the recording (the same assignment of
/// detections to words as [`score`]).
pub fn mistakes(
    truth: &[TruthWord],
    detections: &[Detection],
    commands: &[String],
    tolerance_ms: u64,
) -> Vec<Mistake> {
    let is_kw = |l: &str| commands.iter().any(|c| c == l);
    let Assignment { by_word, unowned } = assign(truth, detections, tolerance_ms);
    let alarm = |d: &Detection, during: Option<&str>| {
        (
            d.time_ms,
            Mistake::FalseAlarm {
                heard: d.label.clone(),
                time_ms: d.time_ms,
                during: during.map(str::to_string),
            },
        )
    };
    let mut out: Vec<(u64, Mistake)> = unowned.iter().map(|d| alarm(d, None)).collect();
    for (w, ds) in truth.iter().zip(&by_word) {
        if !is_kw(&w.label) {
            out.extend(ds.iter().map(|d| alarm(d, Some(&w.label))));
            continue;
        }
        let hit = ds.iter().position(|d| d.label == w.label);
        let first = match (hit, ds.first()) {
            (Some(i), _) => i,
            (None, Some(d)) => {
                let wrong = Mistake::Wrong {
                    label: w.label.clone(),
                    heard: d.label.clone(),
                    time_ms: d.time_ms,
                };
                out.push((d.time_ms, wrong));
                0
            }
            (None, None) => {
                let missed = Mistake::Missed {
                    label: w.label.clone(),
                    start_ms: w.start_ms,
                };
                out.push((w.start_ms, missed));
                continue;
            }
        };
        let again = ds.iter().enumerate().filter(|&(i, _)| i != first);
        out.extend(again.map(|(_, d)| alarm(d, Some(&w.label))));
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, m)| m).collect()
}

/// Exact 95% interval for the mean of a Poisson count `k` (Garwood): the means under
/// which seeing `k` or fewer, or `k` or more, still has a 2.5% chance.
pub fn poisson_interval(k: u64) -> (f64, f64) {
    // P(X <= k) for a Poisson mean m, summed in log space (k may be in the thousands).
    let cdf = |k: u64, m: f64| -> f64 {
        let (mut term, mut sum) = (-m, 0.0f64);
        for i in 0..=k {
            if i > 0 {
                term += m.ln() - (i as f64).ln();
            }
            sum += term.exp();
        }
        sum.min(1.0)
    };
    // The m in [lo, hi] where f(m) = target, f falling in m.
    let solve = |f: &dyn Fn(f64) -> f64, target: f64| -> f64 {
        let (mut lo, mut hi) = (0.0f64, 10.0 + 3.0 * k as f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if f(mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let upper = solve(&|m| cdf(k, m), 0.025);
    let lower = if k == 0 {
        0.0
    } else {
        solve(&|m| cdf(k - 1, m), 0.975)
    };
    (lower, upper)
}

impl Score {
    /// The false-alarm rate with its interval, and a warning where the stream is too
    /// short to tell the rate from zero or from many times it.
    pub fn false_alarm_text(&self) -> String {
        let (lo, hi) = self.false_alarms_per_hour_95;
        let n = self.false_alarms + self.wrong;
        let mut t = format!(
            "false alarms per hour {:.1} (95% interval {lo:.1}-{hi:.1}; {n} in {:.1} h)",
            self.false_alarms_per_hour,
            self.duration_s / 3600.0
        );
        if n < 10 {
            t += &format!(
                "\nnote: {n} false alarm(s) cannot resolve the rate: the stream shows only that it is below {hi:.1}/h; a longer stream narrows it"
            );
        }
        t
    }

    pub fn text(&self) -> String {
        format!(
            "{:.1} min of audio: {} keywords, {} other words\n\
             correct {}  wrong label {}  missed {}  false alarms {}\n\
             recall {:.1}%  miss rate {:.1}%  median latency {}\n{}\n",
            self.duration_s / 60.0,
            self.keywords,
            self.non_keywords,
            self.correct,
            self.wrong,
            self.missed,
            self.false_alarms,
            self.recall * 100.0,
            self.miss_rate * 100.0,
            self.median_latency_ms
                .map(|l| format!("{l:.0} ms after the word's end"))
                .unwrap_or_else(|| "-".into()),
            self.false_alarm_text()
        )
    }
}

/// Per-window posteriors of a whole stream (window end time, one probability per label).
pub type Posteriors = Vec<(u64, Vec<f32>)>;

/// Replays the detector with `cfg` over recorded posteriors.
pub fn replay(labels: &[String], posteriors: &Posteriors, cfg: &DetectorConfig) -> Vec<Detection> {
    let mut det = Detector::new(labels, cfg.clone());
    posteriors
        .iter()
        .filter_map(|(t, p)| det.update(p, *t))
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    pub threshold: f32,
    pub smoothing: usize,
    pub min_windows: usize,
    pub score: Score,
}

/// Scores every threshold in `thresholds` for each (smoothing, min_windows) pair.
#[allow(clippy::too_many_arguments)] // the run's facts and the grid, each plain
pub fn sweep(
    labels: &[String],
    commands: &[String],
    posteriors: &Posteriors,
    truth: &[TruthWord],
    base: &DetectorConfig,
    thresholds: &[f32],
    shapes: &[(usize, usize)],
    tolerance_ms: u64,
    duration_s: f64,
) -> Vec<SweepPoint> {
    let mut out = Vec::new();
    for &(smoothing, min_windows) in shapes {
        for &threshold in thresholds {
            let cfg = DetectorConfig {
                threshold,
                smoothing,
                min_windows,
                ..base.clone()
            };
            let d = replay(labels, posteriors, &cfg);
            out.push(SweepPoint {
                threshold,
                smoothing,
                min_windows,
                score: score(truth, &d, commands, tolerance_ms, duration_s),
            });
        }
    }
    out
}

pub fn sweep_table(points: &[SweepPoint]) -> String {
    let mut s = String::from(
        "threshold smoothing min_windows  recall  miss%  FA/h   correct wrong missed FA  latency_ms\n",
    );
    for p in points {
        let c = &p.score;
        s.push_str(&format!(
            "{:>9.2} {:>9} {:>11} {:>6.1}% {:>5.1} {:>6.1} {:>8} {:>5} {:>6} {:>3}  {}\n",
            p.threshold,
            p.smoothing,
            p.min_windows,
            c.recall * 100.0,
            c.miss_rate * 100.0,
            c.false_alarms_per_hour,
            c.correct,
            c.wrong,
            c.missed,
            c.false_alarms,
            c.median_latency_ms
                .map(|l| format!("{l:.0}"))
                .unwrap_or_else(|| "-".into())
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(label: &str, a: u64, b: u64) -> TruthWord {
        TruthWord {
            label: label.into(),
            start_ms: a,
            end_ms: b,
        }
    }

    fn d(label: &str, t: u64) -> Detection {
        Detection {
            label: label.into(),
            score: 0.9,
            time_ms: t,
        }
    }

    fn commands() -> Vec<String> {
        vec!["left".into(), "right".into(), "up".into()]
    }

    #[test]
    fn each_mistake_is_listed_once_in_time_order_and_agrees_with_the_score() {
        let truth = vec![
            w("left", 1000, 1500),  // heard, then heard again: a false alarm
            w("right", 5000, 5400), // missed
            w("up", 9000, 9300),    // heard as left
            w("bird", 13000, 13400),
        ];
        let dets = vec![
            d("left", 1600),
            d("left", 2300),
            d("left", 9500),
            d("up", 13200),    // during a word that is not a command
            d("right", 20000), // no word said
        ];
        let m = mistakes(&truth, &dets, &commands(), 1000);
        let alarm = |heard: &str, t: u64, during: Option<&str>| Mistake::FalseAlarm {
            heard: heard.into(),
            time_ms: t,
            during: during.map(str::to_string),
        };
        assert_eq!(
            m,
            vec![
                alarm("left", 2300, Some("left")),
                Mistake::Missed {
                    label: "right".into(),
                    start_ms: 5000
                },
                Mistake::Wrong {
                    label: "up".into(),
                    heard: "left".into(),
                    time_ms: 9500
                },
                alarm("up", 13200, Some("bird")),
                alarm("right", 20000, None),
            ]
        );
        let s = score(&truth, &dets, &commands(), 1000, 60.0);
        let count = |f: fn(&Mistake) -> bool| m.iter().filter(|x| f(x)).count();
        assert_eq!(s.missed, count(|x| matches!(x, Mistake::Missed { .. })));
        assert_eq!(s.wrong, count(|x| matches!(x, Mistake::Wrong { .. })));
        assert_eq!(
            s.false_alarms,
            count(|x| matches!(x, Mistake::FalseAlarm { .. }))
        );
        assert_eq!(m[1].to_string(), "5.00 s  missed right");
        assert_eq!(m[3].to_string(), "13.20 s  false alarm up (said: bird)");
        let in_speech = alarm("yes", 736_250, Some(SPEECH_LABEL));
        assert_eq!(
            in_speech.to_string(),
            "736.25 s  false alarm yes (during speech)"
        );
    }

    #[test]
    fn the_false_alarm_interval_is_garwoods() {
        // Published exact 95% limits for a Poisson count.
        for (k, lo, hi) in [
            (0u64, 0.0, 3.689),
            (1, 0.0253, 5.572),
            (2, 0.2422, 7.225),
            (10, 4.795, 18.39),
            // Large counts too (the search range grows with k).
            (1000, 938.973, 1063.952),
        ] {
            let (l, h) = poisson_interval(k);
            assert!(
                (l - lo).abs() < 2e-3 && (h - hi).abs() < 2e-2,
                "{k}: {l} {h}"
            );
        }
        // 0 in 10 minutes is not "0 per hour": the stream says "below 22/h".
        let s = score(&[], &[], &commands(), 1000, 600.0);
        assert_eq!(s.false_alarms_per_hour, 0.0);
        assert!(
            (s.false_alarms_per_hour_95.1 - 22.13).abs() < 0.05,
            "{:?}",
            s.false_alarms_per_hour_95
        );
        assert!(s.text().contains("cannot resolve"), "{}", s.text());
    }

    #[test]
    fn counts_every_kind_of_outcome() {
        let truth = vec![
            w("left", 1000, 1500),   // correct
            w("right", 4000, 4400),  // wrong label (up)
            w("up", 7000, 7300),     // missed
            w("bed", 10000, 10400),  // not a command: a detection here is a false alarm
            w("left", 13000, 13500), // correct, plus a duplicate (false alarm)
        ];
        let dets = vec![
            d("left", 1700),
            d("up", 4500),
            d("right", 10500),
            d("left", 13600),
            d("left", 14200),
            d("up", 20000), // on nothing
        ];
        let s = score(&truth, &dets, &commands(), 1000, 3600.0);
        assert_eq!(
            (
                s.keywords,
                s.non_keywords,
                s.correct,
                s.wrong,
                s.missed,
                s.false_alarms
            ),
            (4, 1, 2, 1, 1, 3)
        );
        assert_eq!(s.recall, 0.5);
        assert_eq!(s.miss_rate, 0.5);
        assert_eq!(s.duration_s, 3600.0);
        assert_eq!(s.false_alarms_per_hour, 4.0);
        // Latencies 200 and 100 ms after the ends.
        assert_eq!(s.median_latency_ms, Some(150.0));
        // The same in half an hour: twice the rate, and its interval scaled with it.
        let half = score(&truth, &dets, &commands(), 1000, 1800.0);
        assert_eq!(half.false_alarms_per_hour, 8.0);
        let (lo, hi) = poisson_interval(4);
        let (a, b) = half.false_alarms_per_hour_95;
        assert!(
            (a - 2.0 * lo).abs() < 1e-9 && (b - 2.0 * hi).abs() < 1e-9,
            "{a} {b}"
        );
    }

    #[test]
    fn a_word_heard_twice_as_another_command_is_one_wrong_and_one_false_alarm() {
        let truth = vec![w("right", 1000, 1400)];
        let dets = vec![d("up", 1500), d("left", 2300)];
        let s = score(&truth, &dets, &commands(), 1000, 3600.0);
        assert_eq!((s.wrong, s.false_alarms, s.missed), (1, 1, 0));
    }

    #[test]
    fn tolerance_edges_are_inclusive() {
        let truth = vec![w("left", 1000, 1500)];
        let at = |t| score(&truth, &[d("left", t)], &commands(), 1000, 60.0);
        assert_eq!(at(1000).correct, 1, "at the start");
        assert_eq!(at(2500).correct, 1, "end + tolerance");
        let late = at(2501);
        assert_eq!((late.correct, late.missed, late.false_alarms), (0, 1, 1));
        let early = at(999);
        assert_eq!((early.correct, early.missed, early.false_alarms), (0, 1, 1));
    }

    #[test]
    fn a_detection_between_two_words_goes_to_the_nearest_end() {
        let truth = vec![w("left", 1000, 1500), w("right", 2000, 2400)];
        let s = score(&truth, &[d("right", 2300)], &commands(), 1000, 60.0);
        assert_eq!((s.correct, s.missed, s.false_alarms), (1, 1, 0));
    }

    #[test]
    fn empty_inputs() {
        let s = score(&[], &[], &commands(), 1000, 0.0);
        assert_eq!(s, Score::default());
        let s = score(&[], &[d("up", 5)], &commands(), 1000, 360.0);
        assert_eq!((s.false_alarms, s.false_alarms_per_hour), (1, 10.0));
    }

    #[test]
    fn replay_and_sweep_follow_the_threshold() {
        let labels: Vec<String> = ["_silence_", "left"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // "left" rises to 0.8 for 6 windows around 1 s.
        let post: Posteriors = (0..60u64)
            .map(|i| {
                let p = if (18..24).contains(&i) { 0.8 } else { 0.05 };
                (i * 50, vec![1.0 - p, p])
            })
            .collect();
        let truth = vec![w("left", 700, 1000)];
        let base = DetectorConfig::default();
        let pts = sweep(
            &labels,
            &["left".to_string()],
            &post,
            &truth,
            &base,
            &[0.5, 0.9],
            &[(1, 1), (3, 2)],
            1000,
            3.0,
        );
        assert_eq!(pts.len(), 4);
        let got: Vec<(f32, usize, usize)> = pts
            .iter()
            .map(|p| (p.threshold, p.smoothing, p.score.correct))
            .collect();
        assert_eq!(
            got,
            vec![(0.5, 1, 1), (0.9, 1, 0), (0.5, 3, 1), (0.9, 3, 0)]
        );
        // Each point uses its own shape, not the base's (smoothing 5, 3 windows): a
        // one-window spike fires only unsmoothed.
        let spike: Posteriors = (0..60u64)
            .map(|i| {
                let p = if i == 19 { 0.95 } else { 0.05 };
                (i * 50, vec![1.0 - p, p])
            })
            .collect();
        let spiked = sweep(
            &labels,
            &["left".to_string()],
            &spike,
            &truth,
            &base,
            &[0.5],
            &[(1, 1), (1, 3), (5, 1)],
            1000,
            3.0,
        );
        let fired: Vec<usize> = spiked.iter().map(|p| p.score.correct).collect();
        assert_eq!(fired, vec![1, 0, 0]);
        // Smoothing over 3 and 2 windows in a row: fires at the 2nd window where the
        // 3-window mean reaches 0.5 (window 20, 1000 ms), one window later than raw.
        let raw = replay(
            &labels,
            &post,
            &DetectorConfig {
                threshold: 0.5,
                smoothing: 1,
                min_windows: 1,
                ..base.clone()
            },
        );
        let smooth = replay(
            &labels,
            &post,
            &DetectorConfig {
                threshold: 0.5,
                smoothing: 3,
                min_windows: 2,
                ..base
            },
        );
        assert_eq!(raw[0].time_ms, 900);
        assert_eq!(smooth[0].time_ms, 1000);
        assert!(sweep_table(&pts).lines().count() == 5);
    }
}
