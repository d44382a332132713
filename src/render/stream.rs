//! A table written row by row, in the look of the other tables (comfy-table's
//! `UTF8_FULL_CONDENSED`): the column widths come from a first pass over the rows, then each
//! row is written as it is made. A report of 100,000 entries is never one table in memory.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

/// The columns' widths (content only, without the one space of padding each side).
pub struct Columns {
    widths: Vec<usize>,
}

impl Columns {
    pub fn new(header: &[&str]) -> Columns {
        Columns {
            widths: header.iter().map(|h| h.width()).collect(),
        }
    }

    /// Widens the columns to fit `row` (a cell may hold several lines).
    pub fn measure(&mut self, row: &[String]) {
        for (w, cell) in self.widths.iter_mut().zip(row) {
            *w = (*w).max(cell.lines().map(UnicodeWidthStr::width).max().unwrap_or(0));
        }
    }

    /// The top border, the header and the line under it.
    pub fn write_header(&self, out: &mut (impl Write + ?Sized), header: &[&str]) -> io::Result<()> {
        self.rule(out, '┌', '─', '┬', '┐')?;
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        self.write_row(out, &header)?;
        self.rule(out, '╞', '═', '╪', '╡')
    }

    /// One row; a cell of several lines makes the row as tall.
    pub fn write_row(&self, out: &mut (impl Write + ?Sized), row: &[String]) -> io::Result<()> {
        let lines: Vec<Vec<&str>> = row.iter().map(|c| c.lines().collect()).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for i in 0..height {
            out.write_all("│".as_bytes())?;
            for (col, (cell, width)) in lines.iter().zip(&self.widths).enumerate() {
                let text = cell.get(i).copied().unwrap_or("");
                if col > 0 {
                    out.write_all("┆".as_bytes())?;
                }
                write!(
                    out,
                    " {text}{} ",
                    " ".repeat(width - text.width().min(*width))
                )?;
            }
            out.write_all("│\n".as_bytes())?;
        }
        Ok(())
    }

    pub fn write_footer(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        self.rule(out, '└', '─', '┴', '┘')
    }

    fn rule(
        &self,
        out: &mut (impl Write + ?Sized),
        left: char,
        line: char,
        cross: char,
        right: char,
    ) -> io::Result<()> {
        let mut s = String::new();
        s.push(left);
        for (i, w) in self.widths.iter().enumerate() {
            if i > 0 {
                s.push(cross);
            }
            s.extend(std::iter::repeat_n(line, w + 2));
        }
        s.push(right);
        s.push('\n');
        out.write_all(s.as_bytes())
    }
}
