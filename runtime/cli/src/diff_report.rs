//! `weir diff --html`: the comparison as one self-contained page (inline CSS and SVG, no
//! script, nothing fetched), with a histogram of each numeric field before and after.

use std::fmt::Write as _;

use crate::diff::{Diff, Drift, describe, number};

/// Bins of a histogram of values that are not small whole numbers.
const BINS: usize = 10;
/// Whole-number values spanning at most this many get one bin each (scores, ratings).
const MAX_WHOLE_BINS: usize = 20;
/// Changed events listed on the page, at most.
const MAX_ROWS: usize = 1000;

const BEFORE_COLOUR: &str = "#9ca3af";
const AFTER_COLOUR: &str = "#2563eb";

/// The page.
pub fn html(diff: &Diff) -> String {
    let mut page = String::new();
    let title = format!("weir diff: shadow {}", escape(&diff.shadow));
    let _ = write!(
        page,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #111827; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.2em; margin-top: 2em; }}
.summary span {{ margin-right: 1.5em; }}
figure {{ display: inline-block; margin: 0 2em 2em 0; }}
figcaption {{ font-weight: 600; margin-bottom: .5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .3em .8em; text-align: left; vertical-align: top; }}
.legend i {{ display: inline-block; width: 1em; height: 1em; vertical-align: middle; margin: 0 .3em 0 1em; }}
</style></head><body>
<h1>{title} against production</h1>
<p class="summary"><span>{} events compared</span><span>{} unchanged</span><span>{} changed</span><span>{} not replayed</span></p>
"#,
        diff.events,
        diff.unchanged,
        diff.changed.len(),
        diff.missing
    );
    let plotted: Vec<_> = diff.drift.iter().filter(|(_, d)| d.before.count + d.after.count > 0).collect();
    if !plotted.is_empty() {
        let _ = write!(
            page,
            r#"<h2>Numeric drift</h2>
<p class="legend"><i style="background:{BEFORE_COLOUR}"></i>production<i style="background:{AFTER_COLOUR}"></i>shadow</p>
"#
        );
        for (path, drift) in plotted {
            let _ = writeln!(
                page,
                "<figure><figcaption>{}: mean {} &rarr; {}, {} moved</figcaption>{}</figure>",
                escape(path),
                number(drift.before.mean),
                number(drift.after.mean),
                drift.moved,
                histogram(path, drift)
            );
        }
    }
    page.push_str("<h2>Changed events</h2>\n");
    if diff.changed.is_empty() {
        page.push_str("<p>None: every compared event has the same outputs, dead letters and tool calls.</p>\n");
    } else {
        page.push_str("<table><tr><th>event</th><th>key</th><th>what changed</th></tr>\n");
        for change in diff.changed.iter().take(MAX_ROWS) {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&change.event),
                escape(&change.key),
                escape(&describe(change))
            );
        }
        page.push_str("</table>\n");
        if diff.changed.len() > MAX_ROWS {
            let _ = writeln!(page, "<p>… and {} more.</p>", diff.changed.len() - MAX_ROWS);
        }
    }
    page.push_str("</body></html>\n");
    page
}

/// Bars of how many values fall in each bin, production's beside the shadow's.
fn histogram(path: &str, drift: &Drift) -> String {
    let (before, after) = drift.values();
    let all = || before.iter().chain(after).copied();
    let (low, high) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x), h.max(x)));
    let whole = all().all(|x| x.fract() == 0.0) && (high - low) < MAX_WHOLE_BINS as f64;
    let (bins, width) = match whole {
        true => ((high - low) as usize + 1, 1.0),
        false if high > low => (BINS, (high - low) / BINS as f64),
        false => (1, 1.0),
    };
    let bin_of = |x: f64| (((x - low) / width) as usize).min(bins - 1);
    let count = |values: &[f64]| {
        let mut counts = vec![0usize; bins];
        values.iter().for_each(|&x| counts[bin_of(x)] += 1);
        counts
    };
    let (before, after) = (count(before), count(after));
    let most = before.iter().chain(&after).copied().max().unwrap_or(1).max(1);
    let (plot_height, bar, gap, top, bottom) = (160.0, 14.0, 12.0, 16.0, 22.0);
    let plot_width = bins as f64 * (2.0 * bar + gap) + gap;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{plot_width}" height="{}" role="img" aria-label="histogram of {}">"#,
        plot_height + top + bottom,
        escape(path)
    );
    for i in 0..bins {
        let x = gap + i as f64 * (2.0 * bar + gap);
        for (offset, n, colour) in [(0.0, before[i], BEFORE_COLOUR), (bar, after[i], AFTER_COLOUR)] {
            let h = plot_height * n as f64 / most as f64;
            let y = top + plot_height - h;
            let _ = write!(
                svg,
                r#"<rect x="{}" y="{y}" width="{bar}" height="{h}" fill="{colour}"><title>{n}</title></rect>"#,
                x + offset
            );
            if n > 0 {
                let _ = write!(
                    svg,
                    r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{n}</text>"#,
                    x + offset + bar / 2.0,
                    y - 3.0
                );
            }
        }
        let label = match whole {
            true => number(low + i as f64),
            false => number(low + i as f64 * width),
        };
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{label}</text>"#,
            x + bar,
            top + plot_height + 15.0
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{0}" x2="{plot_width}" y2="{0}" stroke="#6b7280"/></svg>"##,
        top + plot_height
    );
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
