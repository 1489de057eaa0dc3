//! A bar chart per workload as SVG: one bar per engine at its median time, a whisker from the
//! fastest to the slowest sample. Drawn with plotters' SVG backend (text is left to the
//! viewer, no font library needed) and written atomically.

use plotters::prelude::*;
use std::path::Path;

/// One engine's bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The engine, under the bar.
    pub label: String,
    /// Median seconds per iteration.
    pub median: f64,
    /// Fastest sample.
    pub min: f64,
    /// Slowest sample.
    pub max: f64,
}

/// The unit that shows `seconds` with at most three integer digits: its name and scale.
pub fn unit(seconds: f64) -> (&'static str, f64) {
    if seconds >= 1.0 {
        ("s", 1.0)
    } else if seconds >= 1e-3 {
        ("ms", 1e3)
    } else {
        ("µs", 1e6)
    }
}

/// Draws `bars` under `title` into the SVG file `path`. Bars with a non-finite or negative
/// time are left out; with none left, the chart is empty but still written.
pub fn write(path: &Path, title: &str, bars: &[Bar]) -> Result<(), String> {
    let svg = render(title, bars).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    kiln_runtime::atomic::write(path, |w| w.write_all(svg.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn render(title: &str, bars: &[Bar]) -> Result<String, Box<dyn std::error::Error>> {
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    let bars: Vec<&Bar> = (bars.iter())
        .filter(|b| ok(b.median) && ok(b.min) && ok(b.max))
        .collect();
    let top = bars.iter().map(|b| b.max.max(b.median)).fold(0.0, f64::max);
    let (unit, scale) = unit(if top > 0.0 { top } else { 1.0 });
    let y_max = if top > 0.0 { top * scale * 1.1 } else { 1.0 };
    let n = bars.len().max(1);
    let width = (110 * n as u32 + 120).max(480);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            // A segmented range `0..k` has a segment for each of 0 to k inclusive.
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..y_max)?;
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc(format!(
                "median {unit} per iteration (whiskers: min to max)"
            ))
            .draw()?;
        for (i, b) in bars.iter().enumerate() {
            let color = if b.label.starts_with("kiln") {
                RGBColor(0xd9, 0x5f, 0x02)
            } else {
                RGBColor(0x1b, 0x9e, 0x77)
            };
            let mut rect = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), b.median * scale),
                ],
                color.filled(),
            );
            rect.set_margin(0, 0, 18, 18);
            chart.draw_series(std::iter::once(rect))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![
                    (SegmentValue::CenterOf(i), b.min * scale),
                    (SegmentValue::CenterOf(i), b.max * scale),
                ],
                BLACK.stroke_width(2),
            )))?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// One engine's line in [`write_scaling`]: a value per batch size (`None` where it has none).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// The engine.
    pub label: String,
    /// Seconds per step, one per batch size.
    pub seconds: Vec<Option<f64>>,
    /// Peak resident memory in MiB, one per batch size.
    pub peak_mib: Vec<Option<f64>>,
}

/// Draws time per step and peak memory against `batches` (a log-2 axis), side by side, one
/// line per engine, into the SVG file `path`.
pub fn write_scaling(
    path: &Path,
    title: &str,
    batches: &[usize],
    lines: &[Line],
) -> Result<(), String> {
    let svg = render_scaling(title, batches, lines)
        .map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    kiln_runtime::atomic::write(path, |w| w.write_all(svg.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The colour of engine number `i` (kiln's orange first, as in the bar charts).
fn colour(i: usize) -> RGBColor {
    [
        RGBColor(0xd9, 0x5f, 0x02),
        RGBColor(0x1b, 0x9e, 0x77),
        RGBColor(0x75, 0x70, 0xb3),
    ][i % 3]
}

fn render_scaling(
    title: &str,
    batches: &[usize],
    lines: &[Line],
) -> Result<String, Box<dyn std::error::Error>> {
    let ok = |v: &Option<f64>| v.filter(|v| v.is_finite() && *v > 0.0);
    let xs: Vec<f64> = batches.iter().map(|&b| (b.max(1) as f64).log2()).collect();
    let x_max = xs.iter().copied().fold(1.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 16))?;
        let panels = root.split_evenly((1, 2));
        type Pick = fn(&Line) -> &Vec<Option<f64>>;
        let specs: [(&str, Pick, f64); 2] = [
            ("time per step (ms)", |l| &l.seconds, 1e3),
            ("peak resident memory (MiB)", |l| &l.peak_mib, 1.0),
        ];
        for (panel, (what, pick, scale)) in panels.iter().zip(specs) {
            let top = (lines.iter())
                .flat_map(|l| pick(l).iter().filter_map(ok))
                .fold(0.0, f64::max)
                * scale;
            let y_max = if top > 0.0 { top * 1.1 } else { 1.0 };
            let mut chart = ChartBuilder::on(panel)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(-0.2..x_max + 0.2, 0.0..y_max)?;
            chart
                .configure_mesh()
                .x_labels(batches.len())
                .x_label_formatter(&|v| format!("{:.0}", 2f64.powf(*v)))
                .x_desc("batch size")
                .y_desc(what)
                .draw()?;
            for (i, l) in lines.iter().enumerate() {
                let points: Vec<(f64, f64)> = (xs.iter().zip(pick(l)))
                    .filter_map(|(&x, v)| Some((x, ok(v)? * scale)))
                    .collect();
                let c = colour(i);
                chart
                    .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                    .label(l.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                    });
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_draw_and_skip_unusable_bars() {
        let bar = |label: &str, median: f64| Bar {
            label: label.into(),
            median,
            min: median * 0.9,
            max: median * 1.2,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        write(
            &path,
            "t",
            &[
                bar("kiln fused", 2e-4),
                bar("candle", 3e-4),
                bar("x", f64::NAN),
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("candle") && !svg.contains(">x<"), "{svg}");
        assert!(svg.contains("µs"));
        write(&path, "empty", &[]).unwrap();
        let line = |label: &str, s: f64| Line {
            label: label.into(),
            seconds: vec![Some(s), Some(2.0 * s), None],
            peak_mib: vec![Some(100.0), Some(150.0), Some(f64::NAN)],
        };
        let lines = [line("kiln fused", 0.01), line("pytorch eager", 0.02)];
        write_scaling(&path, "scaling", &[1, 2, 4], &lines).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains("pytorch eager") && svg.contains("batch size"),
            "{svg}"
        );
        assert_eq!(unit(2.5), ("s", 1.0));
        assert_eq!(unit(0.02).0, "ms");
    }
}
