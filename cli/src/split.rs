//! A file of any size → consecutive parts, each one import request's body: at most
//! `Limits::leads` leads and `Limits::bytes` bytes. The file is read as a stream (one record
//! or JSON value at a time); only the part being filled is in memory.
//!
//! CSV: every part starts with the file's header line, and records are written back with
//! `,` (the delimiter the file uses, `,` `;` or tab, is detected from its header line), so
//! each part is a CSV file of its own. A UTF-8 or UTF-16 BOM is decoded away; a file that is
//! not UTF-8 is taken as Windows-1252, as the server does ([`Split::utf8`] says which).
//! JSON: an array of leads (`[{…}, …]`), or JSON lines (one lead per line; any whitespace
//! between values will do); each part is a JSON array of the leads as written in the file.
//!
//! The same file always gives the same parts, and [`Split::sha256`] is its raw bytes' digest:
//! what makes the import ids deterministic, and what tells a second read from a changed file.

use crate::failure::{Failure, bad_input};
use csv::ByteRecord;
use encoding_rs_io::DecodeReaderBytesBuilder;
use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// By extension: `.json`, `.jsonl`, `.ndjson` are JSON; anything else is CSV.
    pub fn of(path: &Path) -> Format {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match extension.as_str() {
            "json" | "jsonl" | "ndjson" => Format::Json,
            _ => Format::Csv,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub leads: u64,
    pub bytes: usize,
}

/// One part: its number (from 1), its leads, its body (a CSV file, or a JSON array).
#[derive(Debug)]
pub struct Part {
    pub number: u32,
    pub leads: u64,
    pub body: Vec<u8>,
}

/// What reading the whole file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub sha256: [u8; 32],
    /// Every CSV record was UTF-8 (after a BOM's decoding); else the file is Windows-1252.
    pub utf8: bool,
    /// Leads per part, in order.
    pub parts: Vec<u64>,
}

/// Reads `path` whole, handing each part to `sink` as soon as it is full.
pub fn split(
    path: &Path,
    format: Format,
    limits: Limits,
    sink: impl FnMut(Part) -> Result<(), Failure>,
) -> Result<Split, Failure> {
    let unreadable = |e: io::Error| bad_input(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(unreadable)?;
    let mut raw = Hashing {
        inner: BufReader::with_capacity(1 << 18, file),
        sha256: Sha256::new(),
    };
    let mut cutter = Cutter::new(limits, sink);
    let mut utf8 = true;
    {
        let decoded = DecodeReaderBytesBuilder::new()
            .strip_bom(true)
            .build(&mut raw);
        let mut text = BufReader::with_capacity(1 << 16, decoded);
        match format {
            Format::Csv => split_csv(&mut text, &mut cutter, &mut utf8)?,
            Format::Json => split_json(&mut text, &mut cutter)?,
        }
    }
    // Whatever follows a JSON array's end (whitespace) is part of the file's digest too.
    io::copy(&mut raw, &mut io::sink()).map_err(unreadable)?;
    let parts = cutter.finish()?;
    if parts.is_empty() {
        return Err(bad_input(format!("{} holds no lead", path.display())));
    }
    Ok(Split {
        sha256: raw.sha256.finalize().into(),
        utf8,
        parts,
    })
}

/// Reads through, hashing what it reads.
struct Hashing<R> {
    inner: R,
    sha256: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        Ok(n)
    }
}

/// Fills parts item by item: `prefix`, the items with `separator` between them, `suffix`.
struct Cutter<F> {
    limits: Limits,
    prefix: Vec<u8>,
    separator: &'static [u8],
    suffix: &'static [u8],
    body: Vec<u8>,
    leads: u64,
    parts: Vec<u64>,
    sink: F,
}

impl<F: FnMut(Part) -> Result<(), Failure>> Cutter<F> {
    fn new(limits: Limits, sink: F) -> Self {
        Cutter {
            limits,
            prefix: Vec::new(),
            separator: b"",
            suffix: b"",
            body: Vec::new(),
            leads: 0,
            parts: Vec::new(),
            sink,
        }
    }

    /// Adds one lead's bytes; `which` names it for an error.
    fn push(&mut self, item: &[u8], which: impl FnOnce() -> String) -> Result<(), Failure> {
        let grown = self.body.len() + self.separator.len() + item.len() + self.suffix.len();
        if self.leads > 0 && (self.leads == self.limits.leads || grown > self.limits.bytes) {
            self.flush()?;
        }
        if self.leads == 0 {
            if self.prefix.len() + item.len() + self.suffix.len() > self.limits.bytes {
                return Err(bad_input(format!(
                    "{} is larger than one request may be ({} bytes)",
                    which(),
                    self.limits.bytes
                )));
            }
            self.body.extend_from_slice(&self.prefix);
        } else {
            self.body.extend_from_slice(self.separator);
        }
        self.body.extend_from_slice(item);
        self.leads += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        if self.leads == 0 {
            return Ok(());
        }
        self.body.extend_from_slice(self.suffix);
        self.parts.push(self.leads);
        let part = Part {
            number: self.parts.len() as u32,
            leads: self.leads,
            body: std::mem::take(&mut self.body),
        };
        self.leads = 0;
        (self.sink)(part)
    }

    fn finish(mut self) -> Result<Vec<u64>, Failure> {
        self.flush()?;
        Ok(self.parts)
    }
}

fn split_csv<F: FnMut(Part) -> Result<(), Failure>>(
    text: &mut impl BufRead,
    cutter: &mut Cutter<F>,
    utf8: &mut bool,
) -> Result<(), Failure> {
    let bad_csv = |e: csv::Error| bad_input(format!("the CSV cannot be read: {e}"));
    // The header line is read apart to find its delimiter (a decoder's first reads may be a
    // few bytes only), then read again as the CSV's first record.
    let mut head = Vec::new();
    text.take(1 << 16)
        .read_until(b'\n', &mut head)
        .map_err(|e| bad_input(format!("the file cannot be read: {e}")))?;
    let delimiter = detect_delimiter(&head);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(io::Cursor::new(head).chain(text));
    let mut writer = csv::WriterBuilder::new();
    writer.flexible(true);
    let mut record = ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(bad_csv)? {
        return Err(bad_input(
            "the file is empty: a CSV file starts with a header line naming its columns",
        ));
    }
    *utf8 &= std::str::from_utf8(record.as_slice()).is_ok();
    cutter.prefix = csv_line(&writer, &record)?;
    while reader.read_byte_record(&mut record).map_err(bad_csv)? {
        // A record of blank cells (`;;;`, as spreadsheets end a sheet) is no lead: the server
        // skips it too, and counting it would leave the bar short of its end.
        if record
            .iter()
            .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
        {
            continue;
        }
        *utf8 &= std::str::from_utf8(record.as_slice()).is_ok();
        let line = csv_line(&writer, &record)?;
        let at = record.position().map_or(0, |p| p.line());
        cutter.push(&line, || format!("the record at line {at}"))?;
    }
    Ok(())
}

/// One record as a line of the parts' CSV (`,`, quoted as needed, `\n`).
fn csv_line(builder: &csv::WriterBuilder, record: &ByteRecord) -> Result<Vec<u8>, Failure> {
    let failed = |e: &dyn std::fmt::Display| bad_input(format!("a record cannot be written: {e}"));
    let mut writer = builder.from_writer(Vec::with_capacity(record.as_slice().len() + 16));
    writer.write_byte_record(record).map_err(|e| failed(&e))?;
    writer.into_inner().map_err(|e| failed(&e))
}

/// The delimiter of the header line (`,` `;` or tab, the most frequent outside quotes; `,`
/// when none is there: a one-column file).
fn detect_delimiter(start: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in start {
        match b {
            b'\n' | b'\r' if !quoted => break,
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    candidates[best]
}

fn split_json<F: FnMut(Part) -> Result<(), Failure>>(
    text: &mut impl BufRead,
    cutter: &mut Cutter<F>,
) -> Result<(), Failure> {
    cutter.prefix = b"[".to_vec();
    cutter.separator = b",";
    cutter.suffix = b"]";
    let bad_json = |e: serde_json::Error| bad_input(format!("the JSON cannot be read: {e}"));
    let mut index = 0u64;
    let mut push = |value: Box<RawValue>| {
        index += 1;
        cutter.push(value.get().as_bytes(), || format!("lead {index}"))
    };
    if first_byte(text)? == Some(b'[') {
        // A stopped sink's failure, kept to be returned as itself rather than as JSON's error.
        let mut stopped = None;
        let mut de = serde_json::Deserializer::from_reader(text);
        let read = de.deserialize_seq(Elements {
            each: |value| push(value).map_err(|f| stopped = Some(f)),
        });
        if let Some(failure) = stopped {
            return Err(failure);
        }
        read.and_then(|()| de.end()).map_err(bad_json)
    } else {
        for value in serde_json::Deserializer::from_reader(text).into_iter::<Box<RawValue>>() {
            push(value.map_err(bad_json)?)?;
        }
        Ok(())
    }
}

/// The first byte that is not whitespace, left unread.
fn first_byte(text: &mut impl BufRead) -> Result<Option<u8>, Failure> {
    loop {
        let buf = text
            .fill_buf()
            .map_err(|e| bad_input(format!("the file cannot be read: {e}")))?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => {
                let first = buf[at];
                text.consume(at);
                return Ok(Some(first));
            }
            None => {
                let n = buf.len();
                text.consume(n);
            }
        }
    }
}

/// A JSON array's elements, one at a time, each handed to `each` as it is read.
struct Elements<E> {
    each: E,
}

impl<'de, E: FnMut(Box<RawValue>) -> Result<(), ()>> Visitor<'de> for Elements<E> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of leads")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Box<RawValue>>()? {
            (self.each)(value).map_err(|()| de::Error::custom("stopped"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn split_text(name: &str, text: &[u8], limits: Limits) -> (Split, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text)
            .unwrap();
        let mut bodies = Vec::new();
        let split = split(&path, Format::of(&path), limits, |part| {
            bodies.push(String::from_utf8_lossy(&part.body).into_owned());
            Ok(())
        })
        .unwrap();
        (split, bodies)
    }

    const TWO: Limits = Limits {
        leads: 2,
        bytes: 1 << 20,
    };

    #[test]
    fn csv_parts_repeat_the_header_and_keep_quoted_newlines() {
        let text = "\u{feff}Name;E-mail\r\n\"Doe; John\";j@x.io\r\n\"multi\nline\";m@x.io\r\n\r\n ; \r\nAnn;a@x.io\r\n";
        let (split, bodies) = split_text("leads.csv", text.as_bytes(), TWO);
        assert_eq!(split.parts, [2, 1]);
        assert!(split.utf8);
        assert_eq!(
            bodies,
            [
                "Name,E-mail\nDoe; John,j@x.io\n\"multi\nline\",m@x.io\n",
                "Name,E-mail\nAnn,a@x.io\n"
            ]
        );
    }

    #[test]
    fn the_body_limit_cuts_before_the_lead_limit() {
        let text = "email\na@x.io\nb@x.io\nc@x.io\n";
        let limits = Limits {
            leads: 10,
            bytes: "email\na@x.io\nb@x.io\n".len(),
        };
        let (split, bodies) = split_text("l.csv", text.as_bytes(), limits);
        assert_eq!(split.parts, [2, 1]);
        assert!(bodies.iter().all(|b| b.len() <= limits.bytes));
    }

    #[test]
    fn utf16_is_decoded_and_windows_1252_is_said() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "email\tname\nj@x.io\tJosé\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        let (split, bodies) = split_text("u.csv", &utf16, TWO);
        assert!(split.utf8);
        assert_eq!(bodies, ["email,name\nj@x.io,José\n"]);
        let (split, _) = split_text("w.csv", b"email,name\nj@x.io,Jos\xe9\n", TWO);
        assert!(!split.utf8);
    }

    #[test]
    fn a_json_array_and_json_lines_give_the_same_parts() {
        let (array, a) = split_text(
            "l.json",
            br#" [ {"email":"a@x.io"}, {"email":"b@x.io"} , {"email":"c@x.io"} ] "#,
            TWO,
        );
        let (lines, l) = split_text(
            "l.jsonl",
            b"{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n{\"email\":\"c@x.io\"}\n",
            TWO,
        );
        assert_eq!((array.parts.clone(), lines.parts), (vec![2, 1], vec![2, 1]));
        assert_eq!(a, l);
        assert_eq!(a[0], r#"[{"email":"a@x.io"},{"email":"b@x.io"}]"#);
    }

    #[test]
    fn bad_files_are_said_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &[u8], &str); 4] = [
            ("e.csv", b"", "empty"),
            ("h.csv", b"email\n", "holds no lead"),
            ("b.json", b"[{\"email\":1},", "cannot be read"),
            (
                "big.csv",
                b"email\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                "line 2 is larger",
            ),
        ];
        for (name, text, expected) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let limits = Limits {
                leads: 10,
                bytes: 20,
            };
            let err = split(&path, Format::of(&path), limits, |_| Ok(())).unwrap_err();
            assert!(err.to_string().contains(expected), "{name}: {err}");
        }
    }

    /// The exports of the server's CSV tests: each part starts with their columns, with `,`.
    #[test]
    fn spreadsheet_exports_split_with_their_columns() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        for (name, header, utf8) in [
            (
                "excel-utf8-bom-crlf.csv",
                "Full Name,E-mail,Phone,Lead Status,Lead Source,Company\n",
                true,
            ),
            (
                "excel-unicode-text-utf16le.txt",
                "First Name,Last Name,Email Address,Mobile\n",
                true,
            ),
            (
                "windows-1252-semicolon.csv",
                " Name , EMAIL ,Phone Number ,  lead_status\n",
                false,
            ),
        ] {
            let mut first = None;
            let read = split(&fixtures.join(name), Format::Csv, TWO, |part| {
                first.get_or_insert(part.body);
                Ok(())
            })
            .unwrap();
            let first = first.unwrap();
            assert!(
                first.starts_with(header.as_bytes()),
                "{name}: {}",
                String::from_utf8_lossy(&first)
            );
            assert_eq!(read.utf8, utf8, "{name}");
        }
    }

    #[test]
    fn the_digest_is_the_raw_files() {
        let text = b"email\na@x.io\n";
        let (split, _) = split_text("d.csv", text, TWO);
        assert_eq!(split.sha256, <[u8; 32]>::from(Sha256::digest(text)));
    }
}
