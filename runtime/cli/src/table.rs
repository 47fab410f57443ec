//! Aligned text tables, as `weir outputs` and `weir dead-letters` print them.

/// `header` and `rows` in columns two spaces apart, left-aligned but for the columns in
/// `right_aligned`, each line without trailing spaces.
pub fn render<const N: usize>(header: [&str; N], rows: &[[String; N]], right_aligned: &[usize]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(String::from);
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = (0..N)
            .map(|i| match right_aligned.contains(&i) {
                true => format!("{:>width$}", row[i], width = widths[i]),
                false => format!("{:<width$}", row[i], width = widths[i]),
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `text` on one line, cut to `width` characters, marked with an ellipsis when cut.
pub fn shorten(text: &str, width: usize) -> String {
    let line = text.replace(['\n', '\r'], " ");
    match line.char_indices().nth(width) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}
