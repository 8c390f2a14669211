//! Line charts as SVG files: log-scaled axes, one coloured line per series, the legend
//! beside the plot so no line hides it.

use std::path::Path;

use plotters::prelude::*;

/// Pixels of the whole picture.
const SIZE: (u32, u32) = (960, 540);
/// Pixels the legend takes on the right.
const LEGEND_WIDTH: u32 = 230;
/// Line colours, indexed by [`Series::color`] modulo their count (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chart {
    /// The caption on top.
    pub(crate) title: String,
    /// What the horizontal axis counts.
    pub(crate) x_label: String,
    /// What the vertical axis counts.
    pub(crate) y_label: String,
    /// The values the horizontal axis labels.
    pub(crate) x_ticks: Vec<f64>,
    /// The lines.
    pub(crate) series: Vec<Series>,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// Its name in the legend.
    pub(crate) name: String,
    /// Its colour, as an index into a fixed palette (the same index, the same colour in
    /// every chart).
    pub(crate) color: usize,
    /// Its points, `(x, y)`, both positive, in x order.
    pub(crate) points: Vec<(f64, f64)>,
}

/// Draws `chart` into an SVG file at `path`, both axes logarithmic.
pub(crate) fn write_svg(path: &Path, chart: &Chart) -> Result<(), String> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    draw(&root, chart).map_err(|e| format!("drawing {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_range, y_range) = (span(xs), span(ys(chart)));
    let x_range = (
        x_range.0.min(first(&chart.x_ticks)),
        x_range.1.max(last(&chart.x_ticks)),
    );
    let mut plot = ChartBuilder::on(&plot_area)
        .caption(&chart.title, ("sans-serif", 28))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (x_range.0 / 1.3..x_range.1 * 1.3)
                .log_scale()
                .with_key_points(chart.x_ticks.clone()),
            (y_range.0 / 1.5..y_range.1 * 1.5)
                .log_scale()
                .with_key_points(ticks(y_range.0 / 1.5, y_range.1 * 1.5)),
        )?;
    plot.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_label_formatter(&|x| short(*x))
        .y_label_formatter(&|y| short(*y))
        .label_style(("sans-serif", 19))
        .axis_desc_style(("sans-serif", 21))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for series in &chart.series {
        let color = PALETTE[series.color % PALETTE.len()];
        let style = color.stroke_width(3);
        plot.draw_series(LineSeries::new(series.points.iter().copied(), style))?;
        plot.draw_series(
            series
                .points
                .iter()
                .map(|&p| Circle::new(p, 4, color.filled())),
        )?;
    }
    for (row, series) in chart.series.iter().enumerate() {
        let color = PALETTE[series.color % PALETTE.len()];
        let y = 70 + 28 * row as i32;
        legend_area.draw(&PathElement::new(
            vec![(8, y), (40, y)],
            color.stroke_width(3),
        ))?;
        legend_area.draw(&Circle::new((24, y), 4, color.filled()))?;
        legend_area.draw(&Text::new(
            series.name.as_str(),
            (48, y - 9),
            ("sans-serif", 20),
        ))?;
    }
    Ok(())
}

/// The smallest and largest of `values`, or (1, 10) when there are none.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
        .unwrap_or((1.0, 10.0))
}

fn ys(chart: &Chart) -> impl Iterator<Item = f64> + '_ {
    chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
}

fn first(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn last(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The values 1, 2 and 5 times a power of ten between `lo` and `hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.max(f64::MIN_POSITIVE).log10().floor());
    while decade <= hi {
        ticks.extend(
            [decade, 2.0 * decade, 5.0 * decade]
                .into_iter()
                .filter(|t| (lo..=hi).contains(t)),
        );
        decade *= 10.0;
    }
    ticks
}

/// An axis label: `32`, `4.5k`, `100k`, `10M`.
fn short(v: f64) -> String {
    let (scaled, unit) = match v {
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    let digits = if scaled < 10.0 && scaled.fract() > 0.05 {
        1
    } else {
        0
    };
    format!("{scaled:.digits$}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_every_series_its_labels_and_a_line_each() {
        let chart = Chart {
            title: "put x16 tasks".into(),
            x_label: "preloaded keys".into(),
            y_label: "operations per second".into(),
            x_ticks: vec![1e5, 1e6, 1e7],
            series: vec![
                Series {
                    name: "sqlx".into(),
                    color: 2,
                    points: vec![(1e5, 20_000.0), (1e6, 15_000.0), (1e7, 9_000.0)],
                },
                Series {
                    name: "pooledstore-pg".into(),
                    color: 6,
                    points: vec![(1e5, 8_000.0), (1e7, 7_000.0)],
                },
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        write_svg(&path, &chart).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            "put x16 tasks",
            "preloaded keys",
            "operations per second",
            "sqlx",
            "pooledstore-pg",
            "\n100k\n",
            "\n10M\n",
        ] {
            assert!(svg.contains(text), "no {text:?} in {svg}");
        }
        // Per series, its line in the plot and its sample in the legend.
        let lines: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"3\""))
            .collect();
        assert_eq!(lines.len(), 4, "{svg}");
        assert_eq!(
            lines[0].matches(',').count(),
            3,
            "three points: {}",
            lines[0]
        );
        assert!(
            lines[0].contains("#2CA02C") && lines[1].contains("#E377C2"),
            "{svg}"
        );
    }

    #[test]
    fn ticks_step_one_two_five() {
        assert_eq!(ticks(1_500.0, 60_000.0), [2e3, 5e3, 1e4, 2e4, 5e4]);
        assert_eq!(ticks(1.0, 4.0), [1.0, 2.0]);
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(short(32.0), "32");
        assert_eq!(short(4_500.0), "4.5k");
        assert_eq!(short(100_000.0), "100k");
        assert_eq!(short(10_000_000.0), "10M");
    }
}
