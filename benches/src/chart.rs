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
        assert_eq!(unit(2.5), ("s", 1.0));
        assert_eq!(unit(0.02).0, "ms");
    }
}
