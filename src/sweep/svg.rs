//! `sweep.svg`: the capacity curve, readable without the JSON. Two panels over the group sizes:
//! above, tests per second (left axis) and the 95th-percentile setup time (right axis); below,
//! the pass rate with the `--target` and `--stop-below` lines. The knee is marked in both.
//! Hand-written SVG (no plotting crate for three lines): pure, a string out.

use std::fmt::Write;

use super::esc;
use super::figures::{Knee, SetupSource, SizeFigures};

const W: f64 = 820.0;
const H: f64 = 620.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 90.0;
const TOP: f64 = 84.0;
/// The upper panel's height, the gap, the lower panel's height.
const UPPER: f64 = 280.0;
const GAP: f64 = 64.0;
const LOWER: f64 = 120.0;

const BLUE: &str = "#1f77b4";
const ORANGE: &str = "#d62728";
const GREEN: &str = "#2ca02c";
const GREY: &str = "#888";
const GRID: &str = "#eee";
const FAINT: &str = "#f0f0f0";

/// What the plot says besides the figures.
pub struct Labels<'a> {
    pub dut: &'a str,
    pub testsuite: &'a str,
    pub target: f64,
    pub stop_below: f64,
}

/// The whole SVG document.
pub fn plot(sizes: &[SizeFigures], knee: &Knee, labels: &Labels) -> String {
    let mut s = String::new();
    let pw = W - LEFT - RIGHT;
    let groups: Vec<usize> = sizes.iter().map(|f| f.group).collect();
    let x = XScale::new(&groups, LEFT, pw);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="16">DUT capacity: {} (suite {})</text>
<text x="{}" y="44" text-anchor="middle" fill="{GREY}">sipplauncher sweep: each point is one run at that --group (tests at once)</text>
"#,
        W / 2.0,
        esc(labels.dut),
        esc(labels.testsuite),
        W / 2.0
    );

    // Upper panel: tests/s and p95 setup time.
    let top = TOP;
    // A tenth of headroom: the top point is not on the frame.
    let tps_max = nice_max(1.1 * sizes.iter().map(|f| f.tests_per_s).fold(0.0, f64::max));
    let setups: Vec<Option<f64>> = sizes
        .iter()
        .map(|f| f.setup.as_ref().map(|s| s.p95_ms))
        .collect();
    let setup_max = nice_max(1.1 * setups.iter().flatten().copied().fold(0.0, f64::max));
    let source = sizes
        .iter()
        .find_map(|f| f.setup.as_ref().map(|s| s.source));
    let setup_name = match source {
        Some(SetupSource::Rtd) => "call setup time p95 (ms, SIPp rtd)",
        Some(SetupSource::SippTime) => "test's SIPp time p95 (ms; no rtd in the scenarios)",
        None => "setup time: none measured (no SIPp in a dry run)",
    };
    frame(&mut s, top, UPPER, pw);
    for i in 0..=5 {
        let frac = f64::from(i) / 5.0;
        let y = top + UPPER - frac * UPPER;
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{BLUE}">{}</text><text x="{:.1}" y="{:.1}" fill="{ORANGE}">{}</text>"#,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            num(tps_max * frac),
            LEFT + pw + 6.0,
            y + 4.0,
            if source.is_some() {
                num(setup_max * frac)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        s,
        r#"<text transform="translate(22,{:.1}) rotate(-90)" text-anchor="middle" fill="{BLUE}">tests per second</text><text transform="translate({:.1},{:.1}) rotate(90)" text-anchor="middle" fill="{ORANGE}">{}</text>"#,
        top + UPPER / 2.0,
        W - 22.0,
        top + UPPER / 2.0,
        setup_name
    );
    let y_tps = |v: f64| top + UPPER - v / tps_max * UPPER;
    let y_setup = |v: f64| top + UPPER - v / setup_max * UPPER;
    series(
        &mut s,
        &sizes
            .iter()
            .map(|f| Some((x.at(f.group), y_tps(f.tests_per_s))))
            .collect::<Vec<_>>(),
        BLUE,
        "circle",
    );
    series(
        &mut s,
        &sizes
            .iter()
            .zip(&setups)
            .map(|(f, v)| v.map(|v| (x.at(f.group), y_setup(v))))
            .collect::<Vec<_>>(),
        ORANGE,
        "square",
    );

    // Lower panel: pass rate, 0-100 %.
    let low = TOP + UPPER + GAP;
    frame(&mut s, low, LOWER, pw);
    let y_rate = |r: f64| low + LOWER - r * LOWER;
    for pct in [0.0, 0.5, 1.0] {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{GREEN}">{}%</text>"#,
            LEFT - 6.0,
            y_rate(pct) + 4.0,
            pct * 100.0
        );
    }
    // The two rates are close (99 %, 95 %): their lines are named in a key inside the panel.
    for (i, (rate, name, dash)) in [
        (labels.target, "--target", "6,3"),
        (labels.stop_below, "--stop-below", "2,3"),
    ]
    .into_iter()
    .enumerate()
    {
        let kx = LEFT + 12.0 + 170.0 * i as f64;
        let ky = low + LOWER - 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GREY}" stroke-dasharray="{dash}"/><line x1="{kx:.1}" y1="{ky:.1}" x2="{:.1}" y2="{ky:.1}" stroke="{GREY}" stroke-dasharray="{dash}"/><text x="{:.1}" y="{:.1}" fill="{GREY}">{name} {}%</text>"#,
            LEFT + pw,
            kx + 24.0,
            kx + 30.0,
            ky + 4.0,
            num(rate * 100.0),
            y = y_rate(rate)
        );
    }
    let _ = writeln!(
        s,
        r#"<text transform="translate(22,{:.1}) rotate(-90)" text-anchor="middle" fill="{GREEN}">pass rate</text>"#,
        low + LOWER / 2.0
    );
    series(
        &mut s,
        &sizes
            .iter()
            .map(|f| Some((x.at(f.group), y_rate(f.pass_rate))))
            .collect::<Vec<_>>(),
        GREEN,
        "circle",
    );

    // The x axis, under the lower panel, and a faint one under the upper.
    for f in sizes {
        let gx = x.at(f.group);
        let mark = if f.interrupted { "*" } else { "" };
        let _ = writeln!(
            s,
            r#"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="{FAINT}"/><line x1="{gx:.1}" y1="{low}" x2="{gx:.1}" y2="{:.1}" stroke="{FAINT}"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle">{}{mark}</text><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="{GREY}">{}</text>"#,
            top + UPPER,
            low + LOWER,
            low + LOWER + 18.0,
            f.group,
            top + UPPER + 16.0,
            f.group
        );
    }
    let scale = if x.log { "log scale" } else { "linear scale" };
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">--group: tests run at once ({scale}{})</text>"#,
        LEFT + pw / 2.0,
        low + LOWER + 38.0,
        if sizes.iter().any(|f| f.interrupted) {
            "; * interrupted, partial"
        } else {
            ""
        }
    );

    // The knee; its labels on the side of its line with more room.
    let middle = LEFT + pw / 2.0;
    let anchor = |gx: f64| if gx > middle { "end" } else { "start" };
    let label_x = |gx: f64| if gx > middle { gx - 4.0 } else { gx + 4.0 };
    if let Some(c) = knee.capacity {
        let gx = x.at(c.group);
        let _ = writeln!(
            s,
            r#"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="{GREEN}" stroke-width="1.5" stroke-dasharray="4,3"/><text x="{:.1}" y="{:.1}" text-anchor="{}" fill="{GREEN}">capacity: --group {} (pass rate {}% &#8805; {}%)</text>"#,
            low + LOWER,
            label_x(gx),
            low - 8.0,
            anchor(gx),
            c.group,
            num(c.pass_rate * 100.0),
            num(labels.target * 100.0)
        );
    }
    if let Some(p) = knee.plateau {
        let gx = x.at(p.group);
        let _ = writeln!(
            s,
            r#"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="{BLUE}" stroke-width="1.5" stroke-dasharray="4,3"/><text x="{:.1}" y="{:.1}" text-anchor="{}" fill="{BLUE}">tests/s stop growing after --group {} ({:+.0}% at {})</text>"#,
            top + UPPER,
            label_x(gx),
            top + UPPER + 34.0,
            anchor(gx),
            p.group,
            p.gain * 100.0,
            p.next_group
        );
    }

    // Legend: one row between the title and the plot, out of the data's way.
    let ly = TOP - 18.0;
    for (i, (colour, shape, name)) in [
        (BLUE, "circle", "tests per second (left axis)"),
        (ORANGE, "square", "setup time p95 (right axis)"),
        (GREEN, "circle", "pass rate (lower panel)"),
    ]
    .into_iter()
    .enumerate()
    {
        let lx = LEFT + 10.0 + 225.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/>{}<text x="{:.1}" y="{:.1}">{name}</text>"#,
            lx + 24.0,
            marker(lx + 12.0, ly, colour, shape),
            lx + 32.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Where a group size goes on the x axis: log scale when the sizes span 10× or more.
struct XScale {
    lo: f64,
    hi: f64,
    log: bool,
    left: f64,
    width: f64,
}

impl XScale {
    fn new(groups: &[usize], left: f64, width: f64) -> XScale {
        let lo = groups.iter().copied().min().unwrap_or(1).max(1) as f64;
        let hi = groups.iter().copied().max().unwrap_or(1).max(1) as f64;
        XScale {
            lo,
            hi,
            log: hi / lo >= 10.0,
            left,
            width,
        }
    }

    fn at(&self, group: usize) -> f64 {
        let g = (group.max(1)) as f64;
        let (a, b, v) = if self.log {
            (self.lo.ln(), self.hi.ln(), g.ln())
        } else {
            (self.lo, self.hi, g)
        };
        // A margin of 5 % each side, so that end points are not on the frame.
        let frac = if b > a { (v - a) / (b - a) } else { 0.5 };
        self.left + self.width * (0.05 + 0.9 * frac)
    }
}

fn frame(s: &mut String, top: f64, height: f64, width: f64) {
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{top}" width="{width}" height="{height}" fill="none" stroke="{GREY}"/>"#
    );
}

/// A polyline through the points that exist (a missing one breaks the line), with markers.
fn series(s: &mut String, points: &[Option<(f64, f64)>], colour: &str, shape: &str) {
    for run in points.split(Option::is_none) {
        let pts: Vec<String> = run
            .iter()
            .flatten()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        if pts.len() > 1 {
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                pts.join(" ")
            );
        }
    }
    for (x, y) in points.iter().flatten() {
        s.push_str(&marker(*x, *y, colour, shape));
        s.push('\n');
    }
}

fn marker(x: f64, y: f64, colour: &str, shape: &str) -> String {
    if shape == "square" {
        format!(
            r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="{colour}"/>"#,
            x - 4.0,
            y - 4.0
        )
    } else {
        format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{colour}"/>"#)
    }
}

/// A round axis maximum at or above `v` (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of
/// ten: the axis is mostly filled), 1 for nothing.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * p)
}

/// A tick label: whole numbers without decimals, small ones with up to two.
fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::figures::{knee, SizeFigures};
    use super::*;
    use crate::report::json::{JsonReport, Summary};

    fn size(group: usize, tps: f64, rate: f64) -> SizeFigures {
        let report = JsonReport {
            elapsed_s: 1.0,
            summary: Summary {
                total: 100,
                success: (rate * 100.0) as u64,
                failed: 100 - (rate * 100.0) as u64,
                flaky: 0,
            },
            ..JsonReport::default()
        };
        let mut f = SizeFigures::of(group, 100, "r", "c", Some(0), &report);
        f.tests_per_s = tps;
        f
    }

    #[test]
    fn a_plot_with_its_axes_legend_and_knee() {
        let sizes = [size(1, 4.0, 1.0), size(10, 27.0, 1.0), size(50, 28.0, 0.9)];
        let k = knee(&sizes, 0.99);
        let svg = plot(
            &sizes,
            &k,
            &Labels {
                dut: "10.99.0.1",
                testsuite: "suite <a&b>",
                target: 0.99,
                stop_below: 0.95,
            },
        );
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        for text in [
            "DUT capacity: 10.99.0.1 (suite suite &lt;a&amp;b&gt;)",
            "tests per second",
            "pass rate",
            "--group: tests run at once (log scale)",
            "capacity: --group 10",
            "tests/s stop growing after --group 10 (+4% at 50)",
            "--target 99%",
            "--stop-below 95%",
            "setup time p95 (right axis)",
        ] {
            assert!(svg.contains(text), "{text:?} missing:\n{svg}");
        }
        // One marker per size per series shown (no setup figures here: two series).
        assert_eq!(svg.matches("<circle").count(), 3 * 2 + 2, "{svg}");
        // Every element closed: as many opening tags as closing or self-closing ones.
        let opened = svg.matches('<').count();
        let closed = svg.matches("/>").count() + svg.matches("</").count() * 2;
        assert_eq!(opened, closed, "balanced tags");
    }

    #[test]
    fn axis_helpers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(38.2), 40.0);
        assert_eq!(nice_max(50.0), 50.0);
        assert_eq!(nice_max(0.7), 0.8);
        assert_eq!(nice_max(120.0), 150.0);
        assert_eq!(nice_max(21.4), 25.0);
        let lin = XScale::new(&[1, 2, 4], 0.0, 100.0);
        assert!(!lin.log);
        assert_eq!(lin.at(1), 5.0);
        assert_eq!(lin.at(4), 95.0);
        let log = XScale::new(&[1, 10, 100], 0.0, 100.0);
        assert!(log.log);
        assert!((log.at(10) - 50.0).abs() < 1e-9);
        assert_eq!(XScale::new(&[5], 0.0, 100.0).at(5), 50.0);
        assert_eq!(num(40.0), "40");
        assert_eq!(num(2.5), "2.50");
        assert_eq!(num(12.25), "12.2");
    }
}
