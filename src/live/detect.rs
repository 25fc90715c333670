//! Turning a stream of per-window posteriors into detections: moving-average smoothing,
//! a threshold that must hold for a minimum number of consecutive windows, and a
//! refractory time so that one utterance gives one detection. `_silence_` and
//! `_unknown_` are never reported.
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A model card may carry its own (`detector`), chosen on held-out streams.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Smoothed posterior a command must reach.
    pub threshold: f32,
    /// Windows averaged for smoothing.
    pub smoothing: usize,
    /// Consecutive windows at or above the threshold before firing.
    pub min_windows: usize,
    /// No new detection for this long after one.
    #[serde(default = "default_refractory_ms")]
    pub refractory_ms: u64,
}

fn default_refractory_ms() -> u64 {
    1000
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threshold: DEFAULT_THRESHOLD,
            smoothing: DEFAULT_SMOOTHING,
            min_windows: DEFAULT_MIN_WINDOWS,
            refractory_ms: 1000,
        }
    }
}

/// The defaults were chosen from the sweep over a 10-minute stream of validation-split
/// speakers (`listen --input val.wav --truth val.csv --sweep`, see BENCHMARKS.md): the
/// highest recall with at most one false alarm in those 10 minutes; the figures quoted
/// there are then measured on a separate stream of test-split speakers.
pub const DEFAULT_THRESHOLD: f32 = 0.62;
pub const DEFAULT_SMOOTHING: usize = 5;
pub const DEFAULT_MIN_WINDOWS: usize = 3;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Detection {
    pub label: String,
    pub score: f32,
    /// Time of the end of the window that fired, from the start of the stream.
    pub time_ms: u64,
}

pub struct Detector {
    cfg: DetectorConfig,
    labels: Vec<String>,
    command: Vec<bool>,
    history: VecDeque<Vec<f32>>,
    smoothed: Vec<f32>,
    streak: Vec<usize>,
    /// A label that fired must fall below the threshold before it can fire again.
    armed: Vec<bool>,
    last_fire: Option<u64>,
}

impl Detector {
    pub fn new(labels: &[String], cfg: DetectorConfig) -> Self {
        let n = labels.len();
        Detector {
            command: labels.iter().map(|l| !l.starts_with('_')).collect(),
            labels: labels.to_vec(),
            history: VecDeque::with_capacity(cfg.smoothing.max(1) + 1),
            smoothed: vec![0.0; n],
            streak: vec![0; n],
            armed: vec![true; n],
            last_fire: None,
            cfg,
        }
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// Current smoothed posteriors, one per label.
    pub fn smoothed(&self) -> &[f32] {
        &self.smoothed
    }

    /// Feeds one window's posteriors, ending at `time_ms`.
    pub fn update(&mut self, probs: &[f32], time_ms: u64) -> Option<Detection> {
        let k = self.cfg.smoothing.max(1);
        let mut row = if self.history.len() >= k {
            self.history.pop_front().unwrap_or_default()
        } else {
            Vec::new()
        };
        row.clear();
        row.extend_from_slice(probs);
        self.history.push_back(row);
        let n = self.history.len() as f32;
        for (i, s) in self.smoothed.iter_mut().enumerate() {
            *s = self.history.iter().map(|h| h[i]).sum::<f32>() / n;
        }
        let mut best: Option<usize> = None;
        for i in 0..self.smoothed.len() {
            if self.command[i] && self.smoothed[i] >= self.cfg.threshold {
                self.streak[i] += 1;
                if self.streak[i] >= self.cfg.min_windows.max(1)
                    && best
                        .map(|b| self.smoothed[i] > self.smoothed[b])
                        .unwrap_or(true)
                {
                    best = Some(i);
                }
            } else {
                self.streak[i] = 0;
                self.armed[i] = true;
            }
        }
        let i = best.filter(|&i| self.armed[i])?;
        if let Some(t) = self.last_fire {
            if time_ms < t + self.cfg.refractory_ms {
                return None;
            }
        }
        self.last_fire = Some(time_ms);
        self.armed[i] = false;
        Some(Detection {
            label: self.labels[i].clone(),
            score: self.smoothed[i],
            time_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["_silence_", "_unknown_", "left", "right"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn feed(d: &mut Detector, rows: &[[f32; 4]]) -> Vec<Detection> {
        rows.iter()
            .enumerate()
            .filter_map(|(i, r)| d.update(r, i as u64 * 100))
            .collect()
    }

    #[test]
    fn one_utterance_gives_one_detection() {
        let mut d = Detector::new(
            &labels(),
            DetectorConfig {
                threshold: 0.7,
                smoothing: 2,
                min_windows: 2,
                refractory_ms: 1000,
            },
        );
        let s = [1.0, 0.0, 0.0, 0.0];
        let l = [0.0, 0.0, 1.0, 0.0];
        let got = feed(&mut d, &[s, l, l, l, l, l, s, s]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].label, "left");
        // smoothing 2: window 2 averages to 1.0 (streak 1), window 3 fires (streak 2).
        assert_eq!(got[0].time_ms, 300);
    }

    #[test]
    fn of_two_commands_above_the_threshold_the_stronger_wins() {
        let cfg = DetectorConfig {
            threshold: 0.3,
            smoothing: 1,
            min_windows: 1,
            refractory_ms: 1000,
        };
        for (row, want) in [
            ([0.0, 0.05, 0.35, 0.6], "right"),
            ([0.0, 0.05, 0.6, 0.35], "left"),
            // An exact tie goes to the first command in the card's order: the same
            // audio always gives the same answer.
            ([0.0, 0.0, 0.5, 0.5], "left"),
        ] {
            let mut d = Detector::new(&labels(), cfg.clone());
            let got = feed(&mut d, &[row]);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].label, want, "{row:?}");
        }
    }

    #[test]
    fn silence_and_unknown_never_fire() {
        let mut d = Detector::new(&labels(), DetectorConfig::default());
        let got = feed(&mut d, &[[1.0, 0.0, 0.0, 0.0]; 20]);
        assert!(got.is_empty());
        let got = feed(&mut d, &[[0.0, 1.0, 0.0, 0.0]; 20]);
        assert!(got.is_empty());
    }

    #[test]
    fn refractory_time_and_threshold_are_respected() {
        let cfg = DetectorConfig {
            threshold: 0.8,
            smoothing: 1,
            min_windows: 1,
            refractory_ms: 500,
        };
        let mut d = Detector::new(&labels(), cfg);
        let r = [0.0, 0.0, 0.0, 0.9];
        let low = [0.0, 0.0, 0.25, 0.75];
        let right_low = [0.0, 0.0, 0.9, 0.1];
        // windows at 0,100,...: right fires at 0; left is held back by the refractory time
        // until 500; right cannot fire again until it has fallen below the threshold.
        let got = feed(
            &mut d,
            &[
                r, right_low, right_low, right_low, right_low, right_low, low, r, r, r, r,
            ],
        );
        assert_eq!(
            got.iter()
                .map(|g| (g.label.as_str(), g.time_ms))
                .collect::<Vec<_>>(),
            vec![("right", 0), ("left", 500), ("right", 1000)]
        );
        assert!((got[0].score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn a_single_spike_is_not_enough_with_min_windows() {
        let mut d = Detector::new(
            &labels(),
            DetectorConfig {
                threshold: 0.7,
                smoothing: 1,
                min_windows: 3,
                refractory_ms: 0,
            },
        );
        let s = [1.0, 0.0, 0.0, 0.0];
        let l = [0.0, 0.0, 1.0, 0.0];
        assert!(feed(&mut d, &[s, l, l, s, l, s]).is_empty());
        assert_eq!(feed(&mut d, &[l, l, l]).len(), 1);
    }

    #[test]
    fn smoothed_scores_are_the_moving_average_and_the_config_is_kept() {
        let cfg = DetectorConfig {
            threshold: 0.9,
            smoothing: 2,
            min_windows: 1,
            refractory_ms: 1000,
        };
        let mut d = Detector::new(&labels(), cfg);
        assert_eq!(d.config().threshold, 0.9);
        assert_eq!(d.config().smoothing, 2);
        d.update(&[0.0, 0.0, 0.2, 0.6], 0);
        d.update(&[0.0, 0.0, 0.6, 0.0], 50);
        // The last two windows averaged, per label.
        let s = d.smoothed();
        assert_eq!(s.len(), 4);
        assert!(
            (s[2] - 0.4).abs() < 1e-6 && (s[3] - 0.3).abs() < 1e-6,
            "{s:?}"
        );
        d.update(&[0.0, 0.0, 0.0, 0.0], 100);
        assert!((d.smoothed()[2] - 0.3).abs() < 1e-6, "{:?}", d.smoothed());
    }

    #[test]
    fn a_card_without_a_refractory_time_gets_one_second() {
        let c: DetectorConfig =
            serde_json::from_str(r#"{"threshold":0.8,"smoothing":4,"min_windows":2}"#).unwrap();
        assert_eq!(c.refractory_ms, 1000);
        assert_eq!(c.refractory_ms, DetectorConfig::default().refractory_ms);
    }
}
