//! PNG plots drawn with plotters: training curves (loss and accuracy), the confusion
//! matrix as a heat map, and one clip's waveform with its spectrogram. The font is
//! embedded (DejaVu Sans), so plots look the same on a machine without fonts.
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn init_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn err<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {}: {e:?}", path.display())
}

/// One row of the training history.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// Loss and accuracy per epoch, training and validation, side by side.
#[allow(clippy::type_complexity)]
pub fn history(path: &Path, rows: &[Epoch]) -> Result<()> {
    init_font();
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err(path))?;
    let (left, right) = root.split_horizontally(600);
    let n = rows.len().max(2) as f64;
    let panels: [(
        &DrawingArea<_, _>,
        &str,
        fn(&Epoch) -> f64,
        fn(&Epoch) -> f64,
    ); 2] = [
        (&left, "loss", |e| e.loss, |e| e.val_loss),
        (&right, "accuracy", |e| e.accuracy, |e| e.val_accuracy),
    ];
    for (area, name, a, b) in panels {
        let ymax = rows
            .iter()
            .flat_map(|e| [a(e), b(e)])
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.05;
        let ymax = if name == "accuracy" { 1.0 } else { ymax };
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("Training and validation {name}"),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(1f64..n, 0f64..ymax)
            .map_err(err(path))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(name)
            .draw()
            .map_err(err(path))?;
        for (f, color, label) in [(a, BLUE, name.to_string()), (b, RED, format!("val_{name}"))] {
            chart
                .draw_series(LineSeries::new(
                    rows.iter().map(|e| (e.epoch as f64, f(e))),
                    color.stroke_width(2),
                ))
                .map_err(err(path))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err(path))?;
    }
    root.present().map_err(err(path))
}

/// Confusion matrix heat map (rows: true label, columns: predicted), counts written in.
pub fn confusion(path: &Path, labels: &[String], cm: &[Vec<usize>], title: &str) -> Result<()> {
    init_font();
    let n = labels.len();
    let root =
        BitMapBackend::new(path, (200 + 64 * n as u32, 160 + 64 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err(path))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(100)
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(err(path))?;
    // Rows are drawn top-down: true label t sits at y = n - 1 - t.
    let name = |v: &SegmentValue<usize>, flip: bool| match v {
        SegmentValue::CenterOf(i) if *i < n => labels[if flip { n - 1 - *i } else { *i }].clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|v| name(v, false))
        .y_label_formatter(&|v| name(v, true))
        .x_desc("predicted")
        .y_desc("true")
        .x_label_style(("sans-serif", 12))
        .y_label_style(("sans-serif", 12))
        .draw()
        .map_err(err(path))?;
    let centre = Pos::new(HPos::Center, VPos::Center);
    for (t, row) in cm.iter().enumerate() {
        let total: usize = row.iter().sum::<usize>().max(1);
        for (p, &v) in row.iter().enumerate() {
            let frac = v as f64 / total as f64;
            let y = n - 1 - t;
            let color = HSLColor(0.6, 0.8, 1.0 - 0.65 * frac);
            let cell = [
                (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
            ];
            chart
                .draw_series(std::iter::once(Rectangle::new(cell, color.filled())))
                .map_err(err(path))?;
            let text_color = if frac > 0.5 { WHITE } else { BLACK };
            let style = ("sans-serif", 14)
                .into_font()
                .color(&text_color)
                .pos(centre);
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{v}"),
                    (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                    style,
                )))
                .map_err(err(path))?;
        }
    }
    root.present().map_err(err(path))
}

/// A clip's waveform above its spectrogram (`frames` x `bins`, row-major).
pub fn wave_and_spectrogram(
    path: &Path,
    title: &str,
    wave: &[f32],
    rate: u32,
    spec: &[f32],
    bins: usize,
) -> Result<()> {
    init_font();
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(err(path))?;
    let (top, bottom) = root.split_vertically(300);
    let secs = wave.len() as f64 / rate as f64;
    let mut c = ChartBuilder::on(&top)
        .caption(format!("Waveform: {title}"), ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..secs, -1f64..1f64)
        .map_err(err(path))?;
    c.configure_mesh()
        .x_desc("seconds")
        .draw()
        .map_err(err(path))?;
    c.draw_series(LineSeries::new(
        wave.iter()
            .enumerate()
            .map(|(i, &v)| (i as f64 / rate as f64, v as f64)),
        &BLUE,
    ))
    .map_err(err(path))?;
    let frames = spec.len() / bins.max(1);
    let (lo, hi) = spec
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let mut c = ChartBuilder::on(&bottom)
        .caption("Spectrogram (log-mel)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0..frames, 0..bins)
        .map_err(err(path))?;
    c.configure_mesh()
        .disable_mesh()
        .x_desc("frame")
        .y_desc("bin")
        .draw()
        .map_err(err(path))?;
    c.draw_series((0..frames).flat_map(|t| {
        (0..bins).map(move |b| {
            let v = ((spec[t * bins + b] - lo) / (hi - lo).max(1e-6)) as f64;
            Rectangle::new([(t, b), (t + 1, b + 1)], ViridisRGB::get_color(v).filled())
        })
    }))
    .map_err(err(path))?;
    root.present().map_err(err(path))
}

/// One curve of a DET plot: a name and its (false alarms per hour, miss rate %) points.
pub type DetCurve = (String, Vec<(f64, f64)>);

/// Detection error trade-off: miss rate against false alarms per hour, one curve per
/// detector shape, the chosen setting circled. Written atomically.
pub fn det(
    path: &Path,
    curves: &[DetCurve],
    chosen: Option<(f64, f64)>,
    title: &str,
) -> Result<()> {
    init_font();
    let tmp = path.with_extension(format!("tmp-{}.png", std::process::id()));
    // Log scale: the settings users care about (a few per hour) and the defaults of a
    // poor model (hundreds per hour) on one plot; no false alarm is drawn at the edge.
    let xmin = 0.2f64;
    let xmax = curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.0))
        .chain(chosen.map(|c| c.0))
        .fold(10.0f64, f64::max)
        * 1.5;
    let ymax = curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.1))
        .fold(5.0f64, f64::max)
        .min(100.0)
        * 1.05;
    let draw = || -> Result<()> {
        let root = BitMapBackend::new(&tmp, (800, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err(path))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((xmin..xmax).log_scale(), 0f64..ymax)
            .map_err(err(path))?;
        chart
            .configure_mesh()
            .x_desc("false alarms per hour (incl. wrong labels; log scale, 0 at the left edge)")
            .y_desc("miss rate (%)")
            .draw()
            .map_err(err(path))?;
        for (i, (name, pts)) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let mut pts: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (x.max(xmin), y)).collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(err(path))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(err(path))?;
        }
        if let Some((x, y)) = chosen {
            let p = (x.max(xmin), y);
            chart
                .draw_series([Circle::new(p, 8, BLACK.stroke_width(2))])
                .map_err(err(path))?
                .label("default")
                .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err(path))?;
        root.present().map_err(err(path))
    };
    if let Err(e) = draw() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}
