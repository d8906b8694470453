//! `sweep.html`: the HTML report (`report::html`) of the sweep's last size, with the capacity
//! curve on top of it as an extra section: the same plot as `sweep.svg`, the table of every size
//! with links to their reports, and the knee in words (pure: figures in, HTML out).

use crate::report::html::Section;

use super::figures::{Knee, SizeFigures};
use super::{esc, table};

/// The capacity section: `svg` (the plot), then the sizes and the knee.
pub fn section(sizes: &[SizeFigures], knee: &Knee, target: f64, svg: &str) -> Section {
    let mut h = String::new();
    h.push_str(r#"<div class="capacity">"#);
    // The plot's own XML prologue-less <svg> element goes in as is: inline SVG.
    h.push_str(svg);
    h.push_str(r#"<table class="grid"><tr>"#);
    for name in table::HEADER {
        h.push_str(&format!("<th>{}</th>", esc(name)));
    }
    h.push_str("<th>report</th></tr>");
    for f in sizes {
        h.push_str("<tr>");
        for cell in table::cells(f) {
            h.push_str(&format!(r#"<td class="num">{}</td>"#, esc(&cell)));
        }
        h.push_str(&format!(
            r#"<td><a href="{0}">{0}</a></td></tr>"#,
            esc(&f.report)
        ));
    }
    h.push_str("</table>");
    for note in table::notes(sizes) {
        h.push_str(&format!(r#"<p class="note">{}</p>"#, esc(&note)));
    }
    for line in table::knee_lines(knee, target, sizes) {
        h.push_str(&format!("<p>{}</p>", esc(&line)));
    }
    if let Some(last) = sizes.last() {
        h.push_str(&format!(
            r#"<p class="note">The tests and runs on this page are those of the last size run, --group {} (<a href="{1}">{1}</a>); every size's report is in the table above.</p>"#,
            last.group,
            esc(&last.report)
        ));
    }
    h.push_str("</div>");
    Section {
        id: "capacity".into(),
        title: "DUT capacity (sipplauncher sweep)".into(),
        html: h,
        first: true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::figures::knee;
    use super::*;
    use crate::report::json::{JsonReport, Summary};

    #[test]
    fn the_section_holds_the_plot_the_sizes_and_the_knee() {
        let size = |group: usize, passed: u64| {
            let r = JsonReport {
                elapsed_s: 2.0,
                summary: Summary {
                    total: 10,
                    success: passed,
                    failed: 10 - passed,
                    flaky: 0,
                },
                ..JsonReport::default()
            };
            SizeFigures::of(group, 10, &format!("group-{group}.json"), "c", Some(0), &r)
        };
        let sizes = [size(1, 10), size(4, 6)];
        let k = knee(&sizes, 0.99);
        let s = section(&sizes, &k, 0.99, "<svg>plot</svg>");
        assert_eq!(s.id, "capacity");
        assert!(s.html.contains("<svg>plot</svg>"), "{}", s.html);
        assert!(s.html.contains("<th>--group</th>"), "{}", s.html);
        assert!(
            s.html
                .contains(r#"<a href="group-4.json">group-4.json</a>"#),
            "{}",
            s.html
        );
        assert!(
            s.html.contains(
                "Capacity: --group 1 is the largest size with a pass rate of at least 99%"
            ),
            "{}",
            s.html
        );
        assert!(s.html.contains("those of the last size run, --group 4"));
        // Two sizes, a header: three rows.
        assert_eq!(s.html.matches("<tr>").count(), 3, "{}", s.html);
    }
}
