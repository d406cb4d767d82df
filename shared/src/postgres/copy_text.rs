//! Rows in `COPY … FROM STDIN`'s text format: one line per row, columns separated by tabs,
//! `\N` for NULL, and a backslash escape for the four bytes that would break the framing.
//!
//! Hand-written: sqlx sends `COPY` data as raw bytes and leaves the format to the caller, and
//! the crates that encode it belong to other drivers (`tokio-postgres`'s binary writer). Text
//! is what Postgres parses for any column type, so no type needs a binary encoding here.

/// One `COPY` text-format data stream, built row by row.
#[derive(Debug, Default)]
pub(super) struct CopyText {
    bytes: Vec<u8>,
    /// Whether the current row has a column yet (the next one is preceded by a tab).
    row_started: bool,
}

impl CopyText {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        CopyText {
            bytes: Vec::with_capacity(bytes),
            row_started: false,
        }
    }

    /// Adds a column to the current row; `None` is SQL NULL.
    pub(super) fn column(&mut self, value: Option<&str>) -> &mut Self {
        if self.row_started {
            self.bytes.push(b'\t');
        }
        self.row_started = true;
        match value {
            None => self.bytes.extend_from_slice(b"\\N"),
            Some(text) => {
                for &b in text.as_bytes() {
                    match b {
                        b'\\' => self.bytes.extend_from_slice(b"\\\\"),
                        b'\t' => self.bytes.extend_from_slice(b"\\t"),
                        b'\n' => self.bytes.extend_from_slice(b"\\n"),
                        b'\r' => self.bytes.extend_from_slice(b"\\r"),
                        _ => self.bytes.push(b),
                    }
                }
            }
        }
        self
    }

    /// Ends the current row.
    pub(super) fn end_row(&mut self) {
        self.bytes.push(b'\n');
        self.row_started = false;
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_tab_separated_rows_end_with_a_newline_and_null_is_backslash_n() {
        let mut text = CopyText::default();
        text.column(Some("Ada"))
            .column(None)
            .column(Some(""))
            .end_row();
        text.column(Some("x")).end_row();
        assert_eq!(text.into_bytes(), b"Ada\t\\N\t\nx\n");
    }

    #[test]
    fn the_bytes_that_frame_rows_and_columns_are_escaped() {
        let mut text = CopyText::default();
        text.column(Some("a\tb\nc\rd\\e \\N é")).end_row();
        assert_eq!(
            String::from_utf8(text.into_bytes()).unwrap(),
            "a\\tb\\nc\\rd\\\\e \\\\N é\n"
        );
    }
}
