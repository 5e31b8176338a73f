//! A small RFC 4180 style CSV reader: comma separated, `"` quoting with `""` escapes, LF or CRLF
//! line ends, blank lines skipped, UTF-8 byte-order mark ignored.
//!
//! It yields raw fields; turning them into numbers is the dataset's job.

/// Why a record could not be read (positions only, never content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CsvFault {
    /// A quoted field runs to the end of the input.
    UnterminatedQuote,
    /// Characters follow a closing quote before the next separator.
    TextAfterQuote,
}

/// Streaming reader over a byte buffer; one record at a time, reusing its buffers.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Field contents of the current record, back to back.
    buf: Vec<u8>,
    /// End offset in `buf` of each field of the current record.
    ends: Vec<usize>,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`, skipping a UTF-8 byte-order mark.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let start = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        Reader {
            bytes,
            pos: start,
            buf: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Number of fields in the current record.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Raw bytes of field `i` of the current record.
    pub(crate) fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// Reads the next non-blank record. `Ok(false)` at end of input.
    pub(crate) fn next_record(&mut self) -> Result<bool, CsvFault> {
        loop {
            if self.pos >= self.bytes.len() {
                return Ok(false);
            }
            self.read_record()?;
            let blank = self.ends.len() == 1 && self.ends[0] == 0;
            if !blank {
                return Ok(true);
            }
        }
    }

    fn read_record(&mut self) -> Result<(), CsvFault> {
        self.buf.clear();
        self.ends.clear();
        let b = self.bytes;
        loop {
            // At the start of a field.
            if b.get(self.pos) == Some(&b'"') {
                self.pos += 1;
                loop {
                    match b.get(self.pos) {
                        None => return Err(CsvFault::UnterminatedQuote),
                        Some(b'"') if b.get(self.pos + 1) == Some(&b'"') => {
                            self.buf.push(b'"');
                            self.pos += 2;
                        }
                        Some(b'"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(&c) => {
                            self.buf.push(c);
                            self.pos += 1;
                        }
                    }
                }
                match b.get(self.pos) {
                    None | Some(b',') | Some(b'\n') | Some(b'\r') => {}
                    Some(_) => return Err(CsvFault::TextAfterQuote),
                }
            } else {
                while let Some(&c) = b.get(self.pos) {
                    if c == b',' || c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.buf.push(c);
                    self.pos += 1;
                }
            }
            self.ends.push(self.buf.len());
            match b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'\r') => {
                    self.pos += 1;
                    if b.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    }
                    return Ok(());
                }
                Some(b'\n') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Result<Vec<Vec<String>>, CsvFault> {
        let mut r = Reader::new(text.as_bytes());
        let mut out = Vec::new();
        while r.next_record()? {
            out.push(
                (0..r.len())
                    .map(|i| String::from_utf8_lossy(r.field(i)).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }

    #[test]
    fn quoted_fields_keep_commas_newlines_and_escaped_quotes() {
        let got = records("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"x\ny\",2,3\n").unwrap();
        assert_eq!(
            got,
            vec![vec!["a", "b,c", "say \"hi\""], vec!["x\ny", "2", "3"]]
        );
    }

    #[test]
    fn blank_lines_and_bom_are_skipped_and_empty_fields_kept() {
        let got = records("\u{feff}a,b\n\n1,\n\r\n").unwrap();
        assert_eq!(got, vec![vec!["a", "b"], vec!["1", ""]]);
    }

    #[test]
    fn broken_quoting_is_reported() {
        assert_eq!(records("a,\"b\n1,2\n"), Err(CsvFault::UnterminatedQuote));
        assert_eq!(records("a,\"b\"c\n"), Err(CsvFault::TextAfterQuote));
    }
}
