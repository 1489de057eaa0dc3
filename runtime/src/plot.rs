//! Training curves as an SVG file: panels side by side, each with a title, an `epoch` x axis, a
//! y label, and a legend naming its series. Drawn by plotters' SVG backend, which needs no
//! font library (text is left to the viewer), and written atomically like every kiln file.
//!
//! Any input draws: a series of one point shows as a marker, an empty series only in the
//! legend; a point with a non-finite coordinate is skipped (the line breaks there), and
//! finite values beyond ±[`MAX_VALUE`] are drawn at that bound.

use crate::atomic;
use crate::history::EpochRecord;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The largest magnitude drawn; larger finite values are clamped to it so every axis range
/// and its span stay finite.
pub const MAX_VALUE: f64 = 1e300;

/// Width and height of one panel, in pixels.
const PANEL_SIZE: (u32, u32) = (480, 360);

/// One chart: series over epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The caption above the chart.
    pub title: String,
    /// The y axis's label.
    pub y_label: String,
    /// The curves, each in its own color.
    pub series: Vec<Series>,
}

/// One curve: named `(epoch, value)` points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The name the legend shows.
    pub name: String,
    /// The points, in the order they are joined.
    pub points: Vec<(f64, f64)>,
}

/// Why a plot could not be written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// There are no panels to draw.
    #[error("cannot plot `{}`: no panels to draw", path.display())]
    NoPanels {
        /// The file.
        path: PathBuf,
    },
    /// plotters failed to draw.
    #[error("cannot draw `{}`: {reason}", path.display())]
    Draw {
        /// The file.
        path: PathBuf,
        /// What plotters said.
        reason: String,
    },
    /// The file could not be written; a previous file there is untouched.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

/// The panels of a training run: the loss, then each other metric the test set measured
/// (accuracy, R², ...), in its order; each with a train series (where training measured it)
/// and a test series.
pub fn training_curves(history: &[EpochRecord]) -> Vec<Panel> {
    let series = |name: &str, value: &dyn Fn(&EpochRecord) -> f64| Series {
        name: name.to_string(),
        points: history.iter().map(|r| (r.epoch as f64, value(r))).collect(),
    };
    let mut names = vec!["loss".to_string()];
    for r in history {
        for (name, _) in r.test.iter().chain(r.train.iter()) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    (names.iter())
        .map(|name| {
            let trained = history.iter().any(|r| r.train.get(name).is_some());
            let tested = history.iter().any(|r| r.test.get(name).is_some());
            let mut s = Vec::new();
            if trained {
                s.push(series("train", &|r| r.train(name)));
            }
            if tested {
                s.push(series("test", &|r| r.test(name)));
            }
            Panel {
                title: name.clone(),
                y_label: y_label(name),
                series: s,
            }
        })
        .collect()
}

/// The words on a metric's axis.
fn y_label(metric: &str) -> String {
    match metric {
        "loss" => "mean loss".into(),
        "accuracy" => "fraction correct".into(),
        "mse" => "mean squared error".into(),
        "mae" => "mean absolute error".into(),
        "r2" => "coefficient of determination".into(),
        other => other.into(),
    }
}

/// Draws `panels` side by side in one SVG file at `path`, replacing it atomically.
pub fn write_svg(path: impl AsRef<Path>, panels: &[Panel]) -> Result<(), PlotError> {
    let path = path.as_ref();
    if panels.is_empty() {
        return Err(PlotError::NoPanels {
            path: path.to_path_buf(),
        });
    }
    let svg = render(panels).map_err(|reason| PlotError::Draw {
        path: path.to_path_buf(),
        reason,
    })?;
    atomic::write(path, |w| w.write_all(svg.as_bytes())).map_err(|source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The SVG text of `panels`, side by side.
fn render(panels: &[Panel]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let n = u32::try_from(panels.len()).map_err(|_| "too many panels".to_string())?;
        let size = (PANEL_SIZE.0.saturating_mul(n), PANEL_SIZE.1);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, panel) in root.split_evenly((1, panels.len())).iter().zip(panels) {
            draw_panel(area, panel).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Draws `panel` on `area`.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>> {
    // Each series as its runs of drawable points: a non-finite point breaks the line.
    let runs: Vec<Vec<Vec<(f64, f64)>>> = (panel.series.iter())
        .map(|s| drawable_runs(&s.points))
        .collect();
    let points = || runs.iter().flatten().flatten();
    let x = axis_range(points().map(|p| p.0));
    let y = axis_range(points().map(|p| p.1));
    let legend_low = legend_goes_low(&runs, &y);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(&panel.y_label)
        .x_labels(8)
        .x_label_formatter(&whole_epoch)
        .draw()?;
    for (i, (series, runs)) in panel.series.iter().zip(&runs).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        for run in runs {
            chart.draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))?;
        }
        let markers = runs.iter().flatten();
        chart
            .draw_series(markers.map(|&p| Circle::new(p, 3, color.filled())))?
            .label(&series.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(if legend_low {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// The label of the x axis at `x`: whole epochs only (a run of one epoch has ticks at 0.6,
/// 0.8, ... too).
fn whole_epoch(x: &f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// The maximal runs of consecutive points of `points` with finite coordinates, clamped to
/// ±[`MAX_VALUE`].
fn drawable_runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let clamp = |v: f64| v.clamp(-MAX_VALUE, MAX_VALUE);
    let mut runs = vec![];
    let mut run = vec![];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            run.push((clamp(x), clamp(y)));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// An axis range holding every one of `values` (finite, within ±[`MAX_VALUE`]) with a margin;
/// `0..1` for none, and a unit-wide range around a single value.
fn axis_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return 0.0..1.0;
    }
    let margin = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.5
    };
    (lo - margin)..(hi + margin)
}

/// Whether the legend goes in the lower right corner: when the series end in the upper half
/// (rising curves, such as accuracy), which leaves the lower right empty.
fn legend_goes_low(runs: &[Vec<Vec<(f64, f64)>>], y: &Range<f64>) -> bool {
    let ends: Vec<f64> = (runs.iter())
        .filter_map(|r| r.last()?.last().map(|p| p.1))
        .collect();
    let middle = y.start / 2.0 + y.end / 2.0;
    !ends.is_empty() && ends.iter().sum::<f64>() / ends.len() as f64 > middle
}

#[cfg(test)]
mod tests;
