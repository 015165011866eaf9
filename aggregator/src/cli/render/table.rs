//! Aligned tables: cells sanitized, columns aligned on the visible text,
//! colour added after padding.

use super::Out;
use super::text::sanitize;

pub(super) type Painter = Box<dyn Fn(usize, &str, &Out) -> String>;

/// A table whose cells are sanitized and whose columns are aligned on the
/// sanitized text (colour codes are added after padding).
pub(super) struct Table {
    headers: Vec<String>,
    rows: Vec<(Vec<String>, Painter)>,
}

impl Table {
    pub(super) fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| sanitize(h)).collect(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(
        &mut self,
        cells: Vec<String>,
        paint: impl Fn(usize, &str, &Out) -> String + 'static,
    ) {
        self.rows
            .push((cells.iter().map(|c| sanitize(c)).collect(), Box::new(paint)));
    }

    pub(super) fn render(&self, out: &Out) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for (cells, _) in &self.rows {
            for (i, c) in cells.iter().enumerate() {
                // A row may have more cells than there are headers (a
                // malformed answer): the extra columns get widths too.
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width(c)),
                    None => widths.push(width(c)),
                }
            }
        }
        let line = |cells: &[String], paint: Option<&Painter>| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                let last = i + 1 == cells.len();
                let pad = if last { 0 } else { widths[i] - width(c) + 2 };
                let text = paint.map_or_else(|| c.clone(), |p| p(i, c, out));
                s.push_str(&text);
                s.extend(std::iter::repeat_n(' ', pad));
            }
            s.push('\n');
            s
        };
        let mut s = line(&self.headers, None);
        for (cells, paint) in &self.rows {
            s.push_str(&line(cells, Some(paint)));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Format;
    use crate::cli::render::paint::Tone;

    #[test]
    fn columns_align_on_visible_text() {
        let out = Out::buffered(Format::Table, true);
        let mut t = Table::new(&["A", "B"]);
        t.row(
            vec!["long-cell".into(), "x".into()],
            |c, text, out: &Out| {
                if c == 0 {
                    out.paint(text, Tone::Critical)
                } else {
                    text.to_owned()
                }
            },
        );
        let rendered = t.render(&out);
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[0], "A          B");
        assert_eq!(lines[1], "\u{1b}[1;31mlong-cell\u{1b}[0m  x");
    }
}
