//! PNG timelines: acknowledged writes per bin around a failure, one panel per system, drawn
//! with the pure-Rust `plotters` (text through `ab_glyph` with DejaVu Sans loaded at run time).

use std::fs;
use std::path::Path;

/// One panel of [`plot_timelines`]: acknowledged writes per bin, and labelled instants.
pub struct Panel {
    pub title: String,
    /// Acknowledgement times relative to the failure, in ms.
    pub acks_ms: Vec<f64>,
    /// (time in ms, label) drawn as vertical lines.
    pub marks: Vec<(f64, String)>,
}

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers DejaVu Sans as plotters' `sans-serif` (once).
fn register_font() -> Result<(), String> {
    use std::sync::OnceLock;
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for path in FONT_PATHS {
            if let Ok(bytes) = fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font(
                    "sans-serif",
                    plotters::style::FontStyle::Normal,
                    bytes,
                )
                .map_err(|_| format!("{path}: not a usable font"));
            }
        }
        Err(format!(
            "no DejaVu Sans font ({}); install fonts-dejavu-core (scripts/install-sentinel.sh)",
            FONT_PATHS.join(", ")
        ))
    })
    .clone()
}

/// Draws `panels` one above the other, sharing the x axis [`from_ms`, `to_ms`] and the y
/// scale: acknowledged writes per `bin_ms`, as bars, with each panel's marks as labelled
/// vertical lines.
pub fn plot_timelines(
    path: &Path,
    title: &str,
    from_ms: f64,
    to_ms: f64,
    bin_ms: f64,
    panels: &[Panel],
) -> Result<(), String> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    register_font()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let bins = ((to_ms - from_ms) / bin_ms).ceil().max(1.0) as usize;
    let counts: Vec<Vec<u32>> = panels
        .iter()
        .map(|p| {
            let mut c = vec![0u32; bins];
            for &t in &p.acks_ms {
                if t >= from_ms && t < to_ms {
                    let i = ((t - from_ms) / bin_ms) as usize;
                    if let Some(slot) = c.get_mut(i) {
                        *slot += 1;
                    }
                }
            }
            c
        })
        .collect();
    let y_top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    // The bars take the lower 60%; the marks' labels go in the band above them.
    let y_max = y_top / 0.6;

    let height = 60 + 330 * panels.len() as u32;
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| err(&e))?;
    let areas = root.split_evenly((panels.len(), 1));
    let colors = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];
    for (i, ((panel, area), c)) in panels.iter().zip(&areas).zip(&counts).enumerate() {
        let color = colors[i % colors.len()];
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 19))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(from_ms..to_ms, 0f64..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("ms since the failure")
            .y_desc(format!("acked writes per {bin_ms} ms"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .x_labels(16)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(c.iter().enumerate().filter(|(_, n)| **n > 0).map(|(j, n)| {
                let x0 = from_ms + j as f64 * bin_ms;
                Rectangle::new([(x0, 0.0), (x0 + bin_ms, f64::from(*n))], color.filled())
            }))
            .map_err(|e| err(&e))?;
        for (k, (t, label)) in panel.marks.iter().enumerate() {
            let mark_color = if k == 0 { BLACK } else { RGBColor(70, 70, 70) };
            chart
                .draw_series(LineSeries::new(
                    [(*t, 0.0), (*t, y_max)],
                    mark_color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
            // Stacked from the top so that close marks do not overlap; to the left of the
            // line in the right part of the plot.
            let right = *t > from_ms + 0.6 * (to_ms - from_ms);
            let (text, anchor) = if right {
                (format!("{label} "), HPos::Right)
            } else {
                (format!(" {label}"), HPos::Left)
            };
            let y = y_max * (0.98 - 0.09 * k as f64);
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (*t, y),
                    ("sans-serif", 16)
                        .into_font()
                        .color(&mark_color)
                        .pos(Pos::new(anchor, VPos::Top)),
                )))
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
