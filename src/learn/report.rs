//! Classification metrics: confusion matrix and a per-label precision / recall / F1
//! report with accuracy, macro and weighted averages (sklearn's layout), as text and JSON.
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct LabelScore {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub labels: Vec<String>,
    pub accuracy: f64,
    pub per_label: Vec<LabelScore>,
    pub macro_avg: [f64; 3],
    pub weighted_avg: [f64; 3],
    pub total: usize,
    /// `confusion[true][predicted]`
    pub confusion: Vec<Vec<usize>>,
}

impl Report {
    pub fn new(labels: &[String], truth: &[usize], predicted: &[usize]) -> Report {
        let n = labels.len();
        let mut cm = vec![vec![0usize; n]; n];
        for (&t, &p) in truth.iter().zip(predicted) {
            cm[t][p] += 1;
        }
        let total = truth.len();
        let correct: usize = (0..n).map(|i| cm[i][i]).sum();
        let per_label: Vec<LabelScore> = (0..n)
            .map(|i| {
                let tp = cm[i][i] as f64;
                let support: usize = cm[i].iter().sum();
                let predicted: usize = (0..n).map(|r| cm[r][i]).sum();
                let precision = if predicted > 0 {
                    tp / predicted as f64
                } else {
                    0.0
                };
                let recall = if support > 0 {
                    tp / support as f64
                } else {
                    0.0
                };
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                LabelScore {
                    label: labels[i].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let present: Vec<&LabelScore> = per_label.iter().filter(|s| s.support > 0).collect();
        let k = present.len().max(1) as f64;
        let macro_avg = [
            present.iter().map(|s| s.precision).sum::<f64>() / k,
            present.iter().map(|s| s.recall).sum::<f64>() / k,
            present.iter().map(|s| s.f1).sum::<f64>() / k,
        ];
        let w = total.max(1) as f64;
        let weighted_avg = [
            per_label
                .iter()
                .map(|s| s.precision * s.support as f64)
                .sum::<f64>()
                / w,
            per_label
                .iter()
                .map(|s| s.recall * s.support as f64)
                .sum::<f64>()
                / w,
            per_label
                .iter()
                .map(|s| s.f1 * s.support as f64)
                .sum::<f64>()
                / w,
        ];
        Report {
            labels: labels.to_vec(),
            accuracy: correct as f64 / w,
            per_label,
            macro_avg,
            weighted_avg,
            total,
            confusion: cm,
        }
    }

    /// Accuracy over the keyword labels only (those not starting with '_').
    pub fn keyword_accuracy(&self) -> f64 {
        let idx: Vec<usize> = (0..self.labels.len())
            .filter(|&i| !self.labels[i].starts_with('_'))
            .collect();
        let total: usize = idx
            .iter()
            .map(|&i| self.confusion[i].iter().sum::<usize>())
            .sum();
        let correct: usize = idx.iter().map(|&i| self.confusion[i][i]).sum();
        correct as f64 / total.max(1) as f64
    }

    /// Width of the label column: the longest label, at least `min`.
    fn label_width(&self, min: usize) -> usize {
        self.labels
            .iter()
            .map(|l| l.len())
            .max()
            .unwrap_or(0)
            .max(min)
    }

    /// sklearn-style classification report.
    pub fn text(&self) -> String {
        let w = self.label_width(12);
        let mut s = format!(
            "{:>w$} {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        for l in &self.per_label {
            s += &format!(
                "{:>w$} {:>9.2} {:>9.2} {:>9.2} {:>9}\n",
                l.label, l.precision, l.recall, l.f1, l.support
            );
        }
        s += &format!(
            "\n{:>w$} {:>9} {:>9} {:>9.2} {:>9}\n",
            "accuracy", "", "", self.accuracy, self.total
        );
        s += &format!(
            "{:>w$} {:>9.2} {:>9.2} {:>9.2} {:>9}\n",
            "macro avg", self.macro_avg[0], self.macro_avg[1], self.macro_avg[2], self.total
        );
        s += &format!(
            "{:>w$} {:>9.2} {:>9.2} {:>9.2} {:>9}\n",
            "weighted avg",
            self.weighted_avg[0],
            self.weighted_avg[1],
            self.weighted_avg[2],
            self.total
        );
        s
    }

    /// Confusion matrix as text (rows: true label, columns: predicted).
    pub fn confusion_text(&self) -> String {
        let w = self.label_width(6);
        let cw = self
            .labels
            .iter()
            .map(|l| l.len().min(9))
            .max()
            .unwrap_or(5)
            .max(5)
            + 1;
        let mut s = format!(
            "{:>w$}  (rows: true, columns: predicted)\n{:>w$}",
            "confusion", ""
        );
        for l in &self.labels {
            let short: String = l.chars().take(cw - 1).collect();
            s += &format!("{short:>cw$}");
        }
        s.push('\n');
        for (l, row) in self.labels.iter().zip(&self.confusion) {
            s += &format!("{l:>w$}");
            for v in row {
                s += &format!("{v:>cw$}");
            }
            s.push('\n');
        }
        s
    }

    pub fn json(&self) -> serde_json::Value {
        let per: serde_json::Map<String, serde_json::Value> = self
            .per_label
            .iter()
            .map(|l| (l.label.clone(), serde_json::json!({"precision": l.precision, "recall": l.recall, "f1": l.f1, "support": l.support})))
            .collect();
        serde_json::json!({
            "accuracy": self.accuracy,
            "keyword_accuracy": self.keyword_accuracy(),
            "total": self.total,
            "labels": self.labels,
            "per_label": per,
            "macro_avg": {"precision": self.macro_avg[0], "recall": self.macro_avg[1], "f1": self.macro_avg[2]},
            "weighted_avg": {"precision": self.weighted_avg[0], "recall": self.weighted_avg[1], "f1": self.weighted_avg[2]},
            "confusion_matrix": self.confusion,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_hand_computed_values() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // truth a a a b b c ; predicted a a b b c c
        let r = Report::new(&labels, &[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2]);
        assert_eq!(
            r.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let a = &r.per_label[0];
        assert!(
            (a.precision - 1.0).abs() < 1e-12
                && (a.recall - 2.0 / 3.0).abs() < 1e-12
                && a.support == 3
        );
        let b = &r.per_label[1];
        assert!((b.precision - 0.5).abs() < 1e-12 && (b.recall - 0.5).abs() < 1e-12);
        assert!((r.macro_avg[0] - (1.0 + 0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!((r.weighted_avg[1] - r.accuracy).abs() < 1e-12);
        let t = r.text();
        assert!(
            t.contains("precision") && t.contains("macro avg") && t.contains("weighted avg"),
            "{t}"
        );
    }
}
