//! A minimal SVG line chart for training curves (no dependencies): one panel
//! per quantity, each with its series, axes, ticks and a legend.

use std::fmt::Write;

/// One line of a panel: a label, a colour and its points `(x, y)`.
pub struct Series<'a> {
    /// The legend text.
    pub label: &'a str,
    /// An SVG colour.
    pub color: &'a str,
    /// The points (non-finite values are skipped).
    pub points: Vec<(f64, f64)>,
}

/// A panel: a title, the x axis label and its series.
pub struct Panel<'a> {
    /// Shown above the panel.
    pub title: &'a str,
    /// Shown under the x axis.
    pub x_label: &'a str,
    /// The lines.
    pub series: Vec<Series<'a>>,
}

const W: f64 = 420.0;
const H: f64 = 300.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Round tick values covering `[lo, hi]` (about five).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// Renders the panels side by side as an SVG document.
pub fn svg(panels: &[Panel]) -> String {
    let width = W * panels.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" viewBox="0 0 {width} {H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{width}" height="{H}" fill="white"/>"#);
    for (i, p) in panels.iter().enumerate() {
        panel(&mut s, p, W * i as f64);
    }
    s.push_str("</svg>\n");
    s
}

fn panel(s: &mut String, p: &Panel, x0: f64) {
    let pts = || {
        p.series
            .iter()
            .flat_map(|se| se.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (mut xlo, mut xhi, mut ylo, mut yhi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts() {
        (xlo, xhi, ylo, yhi) = (xlo.min(x), xhi.max(x), ylo.min(y), yhi.max(y));
    }
    if xlo > xhi {
        (xlo, xhi, ylo, yhi) = (0.0, 1.0, 0.0, 1.0);
    }
    if xhi - xlo < 1e-12 {
        xhi = xlo + 1.0;
    }
    let pad = ((yhi - ylo) * 0.05).max(1e-6);
    let (ylo, yhi) = (ylo - pad, yhi + pad);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| x0 + LEFT + (x - xlo) / (xhi - xlo) * pw;
    let sy = |y: f64| TOP + ph - (y - ylo) / (yhi - ylo) * ph;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        x0 + LEFT + pw / 2.0,
        p.title
    );
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##,
        x0 + LEFT
    );
    for t in ticks(ylo, yhi) {
        let y = sy(t);
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 + LEFT,
            x0 + LEFT + pw,
            x0 + LEFT - 5.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    for t in ticks(xlo, xhi) {
        let x = sx(t);
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            TOP + ph + 15.0,
            fmt_tick(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        x0 + LEFT + pw / 2.0,
        H - 12.0,
        p.x_label
    );
    for (k, se) in p.series.iter().enumerate() {
        let path: Vec<String> = se
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            se.color,
            path.join(" ")
        );
        let ly = TOP + 15.0 + 15.0 * k as f64;
        let lx = x0 + LEFT + pw - 110.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            se.color,
            lx + 25.0,
            ly + 4.0,
            se.label
        );
    }
}

fn fmt_tick(t: f64) -> String {
    let s = format!("{t:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = ticks(0.0, 1.0);
        let want = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), want.len());
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        let t = ticks(0.013, 2.31);
        assert!(t.iter().all(|&x| (0.013..=2.31).contains(&x)) && t.len() >= 4);
    }

    #[test]
    fn svg_has_one_polyline_per_series() {
        let p = Panel {
            title: "loss",
            x_label: "epoch",
            series: vec![Series {
                label: "train",
                color: "red",
                points: vec![(1.0, 2.0), (2.0, f64::NAN), (3.0, 1.0)],
            }],
        };
        let s = svg(&[p]);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<polyline").count(), 1);
        assert!(!s.contains("NaN"));
    }
}
