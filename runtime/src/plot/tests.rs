use super::*;
use crate::train::Metrics;
use std::fs;
use tempfile::TempDir;

fn series(name: &str, points: &[(f64, f64)]) -> Series {
    Series {
        name: name.into(),
        points: points.to_vec(),
    }
}

fn panel(title: &str, series: Vec<Series>) -> Panel {
    Panel {
        title: title.into(),
        y_label: format!("{title} value"),
        series,
    }
}

/// Writes `panels` to a fresh file and gives its text.
fn written(panels: &[Panel]) -> String {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("curves.svg");
    write_svg(&path, panels).unwrap();
    let svg = fs::read_to_string(&path).unwrap();
    // Nothing but the plot is left in the directory.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    svg
}

/// Whether the SVG has a `<text>` element saying `text` (plotters writes it on its own line).
fn has_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">\n{text}\n</text>"))
}

fn record(epoch: usize, loss: f64) -> EpochRecord {
    let metrics = |loss: f64, accuracy: f64| {
        Metrics::new(vec![("loss".into(), loss), ("accuracy".into(), accuracy)])
    };
    EpochRecord {
        epoch,
        train: metrics(loss, 1.0 - loss / 4.0),
        test: metrics(loss * 1.1, 0.9 - loss / 4.0),
        seconds: 1.5,
    }
}

#[test]
fn training_curves_draw_as_svg_with_titles_labels_and_legend() {
    let history: Vec<EpochRecord> = (1..=12).map(|e| record(e, 2.0 / e as f64)).collect();
    let panels = training_curves(&history);
    assert_eq!(panels.len(), 2);
    assert_eq!(panels[0].series[1].points[2], (3.0, 2.0 / 3.0 * 1.1));
    let svg = written(&panels);
    assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in [
        "loss",
        "accuracy",
        "epoch",
        "mean loss",
        "fraction correct",
        "train",
        "test",
    ] {
        assert!(has_text(&svg, text), "no text {text} in the SVG");
    }
    // Whole epochs label the x axis.
    assert!(has_text(&svg, "12") && !has_text(&svg, "12.0"));
}

#[test]
fn a_single_epoch_and_empty_series_draw() {
    let svg = written(&training_curves(&[record(1, 0.5)]));
    assert!(svg.contains("<circle"), "a lone point shows as a marker");
    let svg = written(&[panel(
        "empty",
        vec![series("nothing", &[]), series("one", &[(3.0, -2.0)])],
    )]);
    assert!(has_text(&svg, "nothing") && has_text(&svg, "one"));
    // A panel without any series draws its axes.
    let svg = written(&[panel("bare", vec![])]);
    assert!(has_text(&svg, "bare"));
}

#[test]
fn non_finite_and_extreme_values_do_not_panic() {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let cases: Vec<Vec<(f64, f64)>> = vec![
        vec![(1.0, nan)],
        vec![(1.0, nan), (2.0, inf), (3.0, -inf)],
        vec![
            (1.0, 0.5),
            (2.0, nan),
            (3.0, 0.25),
            (4.0, inf),
            (5.0, 0.125),
        ],
        vec![(nan, 1.0), (inf, 2.0), (1.0, 3.0)],
        vec![(1.0, f64::MAX), (2.0, -f64::MAX)],
        vec![(1.0, f64::MAX), (1.0, f64::MAX)],
        vec![(1.0, 1e-300), (2.0, 2e-300)],
        vec![(1.0, 5e-324), (2.0, 5e-324)],
        vec![(-1e300, 0.0), (1e300, 1.0)],
        vec![(1.0, 1.0); 3],
    ];
    for points in cases {
        let svg = written(&[panel("odd", vec![series("s", &points)])]);
        assert!(svg.starts_with("<svg"), "{points:?}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{points:?}");
    }
}

#[test]
fn a_line_breaks_at_a_non_finite_point() {
    let runs = drawable_runs(&[(1.0, 1.0), (2.0, f64::NAN), (3.0, 3.0), (4.0, 4.0)]);
    assert_eq!(runs, vec![vec![(1.0, 1.0)], vec![(3.0, 3.0), (4.0, 4.0)]]);
    assert_eq!(
        drawable_runs(&[(1.0, f64::MAX)]),
        vec![vec![(1.0, MAX_VALUE)]]
    );
}

#[test]
fn errors_name_the_file_and_keep_the_old_one() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("curves.svg");
    let err = write_svg(&path, &[]).unwrap_err();
    assert!(matches!(err, PlotError::NoPanels { .. }));
    assert!(err.to_string().contains("curves.svg"), "{err}");
    fs::write(&path, "old").unwrap();
    let err = write_svg(dir.path().join("missing/curves.svg"), &training_curves(&[])).unwrap_err();
    assert!(matches!(err, PlotError::Write { .. }), "{err}");
    assert!(err.to_string().contains("missing/curves.svg"), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    write_svg(&path, &training_curves(&[])).unwrap();
    assert!(fs::read_to_string(&path).unwrap().starts_with("<svg"));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}
