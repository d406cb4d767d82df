//! A CSV body of `POST /leads/import` (`Content-Type: text/csv`), parsed into the same
//! [`ImportRequest`] a JSON body gives, so planning, recording, queueing and draining do not
//! know which format came in.
//!
//! What spreadsheets and CRMs really export is read: RFC 4180 quoting (quoted delimiters,
//! quotes and newlines), CRLF or LF, a UTF-8 byte-order mark, UTF-16 (LE or BE, with its BOM)
//! and Windows-1252, `,` `;` or tab as the delimiter. The first line names the columns; each
//! header is matched to a lead field ignoring case, spaces and punctuation, with the common
//! aliases ("E-mail", "Full Name", "First Name" + "Last Name", "Mobile", ...); every other
//! column is kept as a custom attribute of each lead (its header the name, its cell the value),
//! unless the mapping says `Column:ignore`. `importId`, `createdBy` and `onExisting` come from
//! the query, with the JSON body's rules.
//!
//! As for JSON, only request-level problems refuse the request (an unknown charset or
//! delimiter, no header, no email column, no lead, more than `max_leads` leads: reading stops
//! at the first record over the limit); a bad cell fails its lead alone.

use crate::domain::attributes;
use crate::domain::json_text::JsonText;
use crate::domain::{CreatedBy, LeadInput, OnExisting};
use crate::job::request::{ImportRequest, InvalidParam, RequestError, judge_ids, param};
use encoding_rs::{Encoding, WINDOWS_1252};
use serde::Serialize;
use std::borrow::Cow;

/// What an import carries besides its body: the query's parameters (or a form's fields) and
/// the `charset` parameter of its `Content-Type`, as sent. A CSV body takes them all; a JSON
/// body names its own ids and reads only `onExisting` from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub import_id: Option<String>,
    pub created_by: Option<String>,
    /// `,` `;` or a tab (also `comma`, `semicolon`, `tab`); detected from the header when absent.
    pub delimiter: Option<String>,
    pub charset: Option<String>,
    /// `Header:field,Other:field`: columns mapped explicitly, before (and over) the aliases.
    pub mapping: Option<String>,
    /// `fail`, `skip` or `update` (fail when absent).
    pub on_existing: Option<String>,
    /// The query asked for a dry run.
    pub dry_run: bool,
    /// `callbackUrl`: where to POST the notification that the import ended.
    pub callback_url: Option<String>,
}

impl ImportOptions {
    /// The query's `onExisting`, if it names one; a bad one is listed in `errors`.
    pub(crate) fn on_existing(&self, errors: &mut Vec<InvalidParam>) -> Option<OnExisting> {
        OnExisting::parse(self.on_existing.as_deref()?)
            .map_err(|message| errors.push(param("/onExisting", &message)))
            .ok()
    }
}

/// Which columns of a CSV import were read into which field, which were kept as attributes
/// and which were ignored: the `mapping` of the `202` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnMapping {
    pub mapped: Vec<MappedColumn>,
    /// Kept per lead as custom attributes, under these names.
    pub attributes: Vec<String>,
    /// Read into nothing: mapped to `ignore`, a blank header, or a header repeated (its first
    /// column is the attribute).
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappedColumn {
    /// The header as the file has it.
    pub column: String,
    /// `fullName`, `firstName` or `lastName` (joined into `fullName`), `email`, `phone`,
    /// `status` or `source`.
    pub field: &'static str,
}

/// A CSV body read: the request, and how its columns were read.
#[derive(Debug, Clone)]
pub struct CsvImport {
    pub request: ImportRequest,
    pub mapping: ColumnMapping,
}

/// A lead field a column can fill. A full name comes from one column, or from a first-name and
/// a last-name column joined with a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    FullName,
    FirstName,
    LastName,
    Email,
    Phone,
    Status,
    Source,
}

impl Target {
    const ALL: [Target; 7] = [
        Target::FullName,
        Target::FirstName,
        Target::LastName,
        Target::Email,
        Target::Phone,
        Target::Status,
        Target::Source,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::FullName => "fullName",
            Target::FirstName => "firstName",
            Target::LastName => "lastName",
            Target::Email => "email",
            Target::Phone => "phone",
            Target::Status => "status",
            Target::Source => "source",
        }
    }

    /// The field a header names: compared in lower case, letters and digits only, so
    /// "E-mail", "Email Address" and " EMAIL " all name the email.
    fn of_header(header: &str) -> Option<Target> {
        Some(match loose(header).as_str() {
            "fullname" | "name" | "contactname" | "leadname" => Target::FullName,
            "firstname" | "givenname" | "forename" => Target::FirstName,
            "lastname" | "surname" | "familyname" => Target::LastName,
            "email" | "emailaddress" | "mail" | "emailid" => Target::Email,
            "phone" | "phonenumber" | "mobile" | "mobilephone" | "mobilenumber" | "telephone"
            | "tel" | "cell" | "cellphone" => Target::Phone,
            "status" | "leadstatus" => Target::Status,
            "source" | "leadsource" => Target::Source,
            _ => return None,
        })
    }
}

/// A header or field name compared loosely: its letters and digits, in lower case.
fn loose(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Which column (by position) fills each field: an explicit `mapping` first, then the first
/// column whose header names the field.
#[derive(Debug, Default)]
struct Columns {
    full_name: Option<usize>,
    first_name: Option<usize>,
    last_name: Option<usize>,
    email: Option<usize>,
    phone: Option<usize>,
    status: Option<usize>,
    source: Option<usize>,
    /// Columns kept as attributes, by position.
    attributes: Vec<usize>,
}

impl Columns {
    /// The columns of `headers`, with the `mapping` parameter's explicit pairs over the
    /// aliases; a pair that names no column or no field is the message of a `400`.
    fn of_headers(headers: &csv::StringRecord, mapping: Option<&str>) -> Result<Self, String> {
        let mut columns = Columns::default();
        let mut explicit = vec![false; headers.len()];
        for pair in mapping
            .unwrap_or("")
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            let Some((header, field)) = pair.rsplit_once(':') else {
                return Err(format!(
                    "mapping pairs are Header:field separated by commas; {pair:?} is not"
                ));
            };
            let ignore = loose(field) == "ignore";
            let target = Target::ALL
                .into_iter()
                .find(|t| loose(t.name()) == loose(field));
            if target.is_none() && !ignore {
                return Err(format!(
                    "{:?} is not a field; map columns to fullName, firstName, lastName, email, phone, status, source or ignore",
                    field.trim()
                ));
            }
            let position = headers
                .iter()
                .position(|h| h.trim() == header.trim())
                .or_else(|| headers.iter().position(|h| loose(h) == loose(header)))
                .ok_or_else(|| {
                    format!(
                        "mapping names the column {:?}, which the CSV does not have; its columns are {}",
                        header.trim(),
                        listed(headers)
                    )
                })?;
            if let Some(target) = target {
                *columns.slot(target) = Some(position);
            }
            explicit[position] = true;
        }
        for (position, header) in headers.iter().enumerate() {
            if let (false, Some(target)) = (explicit[position], Target::of_header(header)) {
                columns.slot(target).get_or_insert(position);
            }
        }
        // Every column left is an attribute: the first of each (trimmed) header name, unless
        // the mapping named it (to ignore it) or its header is blank.
        let used = columns.used();
        let mut names = std::collections::HashSet::new();
        for (position, header) in headers.iter().enumerate() {
            let name = header.trim();
            if used.iter().any(|(at, _)| *at == Some(position))
                || explicit[position]
                || name.is_empty()
                || !names.insert(name)
            {
                continue;
            }
            if name.chars().count() > attributes::MAX_NAME_CHARS {
                return Err(format!(
                    "the column {:?}… would be an attribute, whose name may be at most {} characters; map it to ignore or rename it",
                    name.chars().take(20).collect::<String>(),
                    attributes::MAX_NAME_CHARS
                ));
            }
            columns.attributes.push(position);
        }
        if columns.attributes.len() > attributes::MAX_COUNT {
            return Err(format!(
                "{} columns map to no field; at most {} are kept as attributes (ignore others with mapping Column:ignore)",
                columns.attributes.len(),
                attributes::MAX_COUNT
            ));
        }
        Ok(columns)
    }

    /// The column of each field read; first and last names only when no column gives the
    /// full name (which wins).
    fn used(&self) -> [(Option<usize>, Target); 7] {
        let (first, last) = match self.full_name {
            Some(_) => (None, None),
            None => (self.first_name, self.last_name),
        };
        [
            (self.full_name, Target::FullName),
            (first, Target::FirstName),
            (last, Target::LastName),
            (self.email, Target::Email),
            (self.phone, Target::Phone),
            (self.status, Target::Status),
            (self.source, Target::Source),
        ]
    }

    fn slot(&mut self, target: Target) -> &mut Option<usize> {
        match target {
            Target::FullName => &mut self.full_name,
            Target::FirstName => &mut self.first_name,
            Target::LastName => &mut self.last_name,
            Target::Email => &mut self.email,
            Target::Phone => &mut self.phone,
            Target::Status => &mut self.status,
            Target::Source => &mut self.source,
        }
    }

    /// What each column was read into.
    fn report(&self, headers: &csv::StringRecord) -> ColumnMapping {
        let used = self.used();
        let mut mapping = ColumnMapping::default();
        for (position, header) in headers.iter().enumerate() {
            let fields = used.iter().filter(|(at, _)| *at == Some(position));
            let mut any = false;
            for (_, target) in fields {
                any = true;
                mapping.mapped.push(MappedColumn {
                    column: header.to_owned(),
                    field: target.name(),
                });
            }
            if self.attributes.contains(&position) {
                mapping.attributes.push(header.trim().to_owned());
            } else if !any {
                mapping.ignored.push(header.to_owned());
            }
        }
        mapping
    }

    fn lead(&self, headers: &csv::StringRecord, record: &csv::StringRecord) -> LeadInput {
        let cell = |column: Option<usize>| column.and_then(|at| record.get(at));
        let full_name: Option<Cow<str>> = match self.full_name {
            Some(at) => record.get(at).map(Cow::Borrowed),
            None if self.first_name.is_none() && self.last_name.is_none() => None,
            None => {
                let parts: Vec<&str> = [cell(self.first_name), cell(self.last_name)]
                    .into_iter()
                    .flatten()
                    .map(str::trim)
                    .filter(|part| !part.is_empty())
                    .collect();
                Some(Cow::Owned(parts.join(" ")))
            }
        };
        let attributes = self
            .attributes
            .iter()
            .filter_map(|&at| Some((headers.get(at)?.trim(), record.get(at)?)));
        LeadInput::from_cells(
            [
                full_name.as_deref(),
                cell(self.email),
                cell(self.phone),
                cell(self.status),
                cell(self.source),
            ],
            attributes,
        )
    }
}

impl ImportRequest {
    /// Parses a CSV body sent by `caller` (verified or not, as [`ImportRequest::parse_as`]);
    /// `max_leads` is `MAX_LEADS_PER_IMPORT`.
    pub fn parse_csv(
        body: &[u8],
        options: &ImportOptions,
        max_leads: usize,
        caller: Option<&CreatedBy>,
    ) -> Result<Self, RequestError> {
        CsvImport::parse(body, options, max_leads, caller).map(|import| import.request)
    }
}

impl CsvImport {
    /// Parses a CSV body as [`ImportRequest::parse_csv`], with the columns' mapping.
    pub fn parse(
        body: &[u8],
        options: &ImportOptions,
        max_leads: usize,
        caller: Option<&CreatedBy>,
    ) -> Result<Self, RequestError> {
        let text_of = |value: &Option<String>| match value {
            Some(text) => JsonText::Text(text.as_str().into()),
            None => JsonText::default(),
        };
        let mut errors = Vec::new();
        let (import_id, created_by) = judge_ids(
            &text_of(&options.import_id),
            &text_of(&options.created_by),
            caller,
            &mut errors,
        )?;
        let delimiter = match options.delimiter.as_deref().map(delimiter_named) {
            Some(Ok(delimiter)) => Some(delimiter),
            Some(Err(message)) => {
                errors.push(param("/delimiter", &message));
                None
            }
            None => None,
        };
        let on_existing = options.on_existing(&mut errors);
        let text = decode(body, options.charset.as_deref())
            .map_err(|message| errors.push(param("/charset", &message)))
            .ok();
        let (Some(created_by), Some(text), true) = (created_by, text, errors.is_empty()) else {
            return Err(RequestError::invalid(
                "the import request is invalid",
                errors,
            ));
        };
        let delimiter = delimiter.unwrap_or_else(|| detect_delimiter(&text));
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(text.as_bytes());
        let headers = reader.headers().map_err(unreadable)?.clone();
        if headers.iter().all(|h| h.trim().is_empty()) {
            return Err(RequestError::invalid(
                "the CSV has no header line: its first line must name the columns",
                vec![],
            ));
        }
        let columns =
            Columns::of_headers(&headers, options.mapping.as_deref()).map_err(|message| {
                RequestError::invalid("the mapping is invalid", vec![param("/mapping", &message)])
            })?;
        if columns.email.is_none() {
            return Err(RequestError::invalid(
                format!(
                    "the CSV has no email column; its columns are {} (name one with ?mapping=Column:email)",
                    listed(&headers)
                ),
                vec![param("/email", "no column names the email")],
            ));
        }
        let mut leads = Vec::with_capacity(max_leads.min(1024));
        let mut lines = Vec::with_capacity(max_leads.min(1024));
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(unreadable)? {
            // A record of blank cells (",,," as spreadsheets leave at the end) is no lead.
            if record.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            if leads.len() == max_leads {
                return Err(RequestError::TooManyLeads { max: max_leads });
            }
            leads.push(columns.lead(&headers, &record));
            lines.push(start_line(&record, text.as_bytes()));
        }
        if leads.is_empty() {
            return Err(RequestError::invalid(
                "the import request is invalid",
                vec![param("/leads", "the CSV must contain at least one lead")],
            ));
        }
        Ok(CsvImport {
            request: ImportRequest {
                import_id,
                created_by,
                leads,
                lines,
                on_existing,
                dry_run: false,
                callback_url: options.callback_url.clone(),
            },
            mapping: columns.report(&headers),
        })
    }
}

/// The line `record` starts on (the header is line 1), quoted newlines counted. The csv crate
/// counts lines at each `\n`; after a CRLF it places the next record at that `\n`, one line
/// early, so a record found starting on a `\n` starts on the next line. A body of at most 4 MiB
/// has fewer than `u32::MAX` lines.
fn start_line(record: &csv::StringRecord, text: &[u8]) -> u32 {
    let Some(position) = record.position() else {
        return 0;
    };
    let at_newline = usize::try_from(position.byte())
        .ok()
        .and_then(|at| text.get(at))
        == Some(&b'\n');
    u32::try_from(position.line() + u64::from(at_newline)).unwrap_or(u32::MAX)
}

/// The headers as a message lists them: `"Name", "Phone"`.
fn listed(headers: &csv::StringRecord) -> String {
    let quoted: Vec<String> = headers.iter().map(|h| format!("{:?}", h.trim())).collect();
    quoted.join(", ")
}

/// Text is decoded into UTF-8 before the CSV reader sees it, so it cannot fail on encoding;
/// anything else it could report (an I/O error on a byte slice) is still a clear refusal.
fn unreadable(e: csv::Error) -> RequestError {
    let line = e
        .position()
        .map_or(String::new(), |p| format!(" at line {}", p.line()));
    RequestError::invalid(format!("the CSV could not be read{line}"), vec![])
}

pub(crate) fn delimiter_named(name: &str) -> Result<u8, String> {
    match name {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "tab" => Ok(b'\t'),
        _ => Err("delimiter must be one of , ; or tab (comma, semicolon, tab)".to_owned()),
    }
}

/// The body as text: by its byte-order mark when it has one (UTF-8, UTF-16LE, UTF-16BE), else
/// by the `charset` it was sent with, else UTF-8 when it is valid UTF-8, else Windows-1252 (what
/// Excel on Windows exports). Bytes invalid in the chosen encoding become U+FFFD, which fails
/// only the lead holding them if they are in a field it reads.
fn decode<'a>(body: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, str>, String> {
    if let Some((encoding, bom_length)) = Encoding::for_bom(body) {
        return Ok(encoding.decode_without_bom_handling(&body[bom_length..]).0);
    }
    if let Some(label) = charset {
        let label = label.trim().trim_matches('"');
        let encoding = Encoding::for_label(label.as_bytes())
            .ok_or_else(|| format!("charset {label:?} is not an encoding this service reads"))?;
        return Ok(encoding.decode_without_bom_handling(body).0);
    }
    Ok(match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(body).0,
    })
}

/// The delimiter the header line uses: the most frequent of `,` `;` and tab outside quotes
/// (`,` when none or on a tie).
fn detect_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for byte in text.bytes() {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if quoted => {}
            _ => {
                if let Some(count) = counts.iter_mut().find(|(d, _)| *d == byte) {
                    count.1 += 1;
                }
            }
        }
    }
    counts
        .iter()
        .rev()
        .max_by_key(|(_, count)| *count)
        .filter(|(_, count)| *count > 0)
        .map_or(b',', |(delimiter, _)| *delimiter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Lead;

    fn options(created_by: &str) -> ImportOptions {
        ImportOptions {
            created_by: Some(created_by.to_owned()),
            ..ImportOptions::default()
        }
    }

    fn parse(body: &[u8]) -> Result<ImportRequest, RequestError> {
        ImportRequest::parse_csv(body, &options("u1"), 5, None)
    }

    /// (fullName, email, phone) of a lead that passes, or its error code.
    type Judged = Result<(String, String, Option<String>), String>;

    fn judged(request: &ImportRequest) -> Vec<Judged> {
        request
            .leads
            .iter()
            .map(|input| {
                Lead::parse(input)
                    .map(|l| {
                        (
                            l.full_name.as_str().to_owned(),
                            l.email.as_str().to_owned(),
                            l.phone.map(|p| p.as_str().to_owned()),
                        )
                    })
                    .map_err(|e| e.code.to_owned())
            })
            .collect()
    }

    fn ok(name: &str, email: &str) -> Judged {
        Ok((name.to_owned(), email.to_owned(), None))
    }

    fn detail(error: RequestError) -> String {
        match error {
            RequestError::Invalid { detail, errors } => errors.iter().fold(detail, |text, e| {
                format!("{text} {} {}", e.pointer, e.message)
            }),
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn quoting_bom_and_crlf_as_excel_writes_them() {
        let body = "\u{feff}Full Name,E-mail,Notes\r\n\"Doe, John\",john@x.io,\"two\r\nlines\"\r\n\"Ann \"\"A\"\" B\",ann@x.io,\r\n";
        let request = parse(body.as_bytes()).unwrap();
        assert_eq!(
            judged(&request),
            [ok("Doe, John", "john@x.io"), ok("Ann \"A\" B", "ann@x.io")]
        );
        assert_eq!(request.created_by.as_str(), "u1");
    }

    #[test]
    fn delimiters_are_detected_from_the_header_or_given() {
        for body in [
            "name;email\nA;a@x.io\n",
            "name\temail\nA\ta@x.io\n",
            "\"Name\";email;\"x,y\"\nA;a@x.io;1,2\n",
        ] {
            let request = parse(body.as_bytes()).unwrap();
            assert_eq!(judged(&request)[0], ok("A", "a@x.io"), "{body:?}");
        }
        let given = ImportOptions {
            delimiter: Some(";".into()),
            ..options("u1")
        };
        // As many commas as semicolons: detection says `,`, and finds no email column.
        let body = b"Name;Email;Notes,more,commas\nA,1;a@x.io;x\n";
        assert!(detail(parse(body).unwrap_err()).contains("no email column"));
        let request = ImportRequest::parse_csv(body, &given, 5, None).unwrap();
        assert_eq!(judged(&request), [ok("A,1", "a@x.io")]);
        let bad = ImportOptions {
            delimiter: Some("|".into()),
            ..options("u1")
        };
        assert!(
            detail(ImportRequest::parse_csv(b"email\na@x.io", &bad, 5, None).unwrap_err())
                .contains("/delimiter")
        );
    }

    #[test]
    fn utf16_and_windows_1252_are_decoded() {
        let text = "Name,Email\r\nJosé Müller,jose@x.io\r\n";
        let mut le = vec![0xff, 0xfe];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xfe, 0xff];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let (cp1252, _, _) = WINDOWS_1252.encode(text);
        for body in [le, be, cp1252.into_owned()] {
            assert_eq!(
                judged(&parse(&body).unwrap()),
                [ok("José Müller", "jose@x.io")]
            );
        }
        // A charset that says otherwise is obeyed; an unknown one is refused.
        let latin = ImportOptions {
            charset: Some("ISO-8859-1".into()),
            ..options("u1")
        };
        let request =
            ImportRequest::parse_csv("Name,Email\nJosé,j@x.io\n".as_bytes(), &latin, 5, None)
                .unwrap();
        assert_eq!(judged(&request), [ok("JosÃ©", "j@x.io")]);
        let unknown = ImportOptions {
            charset: Some("klingon".into()),
            ..options("u1")
        };
        assert!(
            detail(ImportRequest::parse_csv(b"email\na@x.io", &unknown, 5, None).unwrap_err())
                .contains("/charset")
        );
    }

    #[test]
    fn headers_match_fields_by_alias_ignoring_case_and_punctuation() {
        let body = " first name ,LAST_NAME,Email Address,Mobile,Lead Status,Lead Source,Company\n\
                    Ada,Lovelace,ada@x.io,+44 20 7946 0000,CONTACTED,REFERRAL,X\n\
                    ,Solo,solo@x.io,,,,\n";
        let request = parse(body.as_bytes()).unwrap();
        let lead = Lead::parse(&request.leads[0]).unwrap();
        assert_eq!(lead.full_name.as_str(), "Ada Lovelace");
        assert!(lead.phone.is_some());
        assert_eq!(
            (lead.status.as_str(), lead.source.as_str()),
            ("CONTACTED", "REFERRAL")
        );
        assert_eq!(judged(&request)[1], ok("Solo", "solo@x.io"));
    }

    fn mapped(import: &CsvImport) -> Vec<(&str, &str)> {
        import
            .mapping
            .mapped
            .iter()
            .map(|m| (m.column.as_str(), m.field))
            .collect()
    }

    #[test]
    fn the_mapping_says_what_each_column_became() {
        let body = b"First Name,Last Name,E-mail,E-mail,Company\nAda,L,a@x.io,b@x.io,X\n";
        let import = CsvImport::parse(body, &options("u1"), 5, None).unwrap();
        assert_eq!(
            mapped(&import),
            [
                ("First Name", "firstName"),
                ("Last Name", "lastName"),
                ("E-mail", "email")
            ]
        );
        assert_eq!(import.mapping.attributes, ["E-mail", "Company"]);
        assert!(import.mapping.ignored.is_empty());
        // A full-name column wins over first and last names, which are then attributes.
        let body = b"First Name,Name,email\nAda,Ada L,a@x.io\n";
        let import = CsvImport::parse(body, &options("u1"), 5, None).unwrap();
        assert_eq!(mapped(&import), [("Name", "fullName"), ("email", "email")]);
        assert_eq!(import.mapping.attributes, ["First Name"]);
        assert_eq!(judged(&import.request), [ok("Ada L", "a@x.io")]);
    }

    #[test]
    fn an_explicit_mapping_overrides_the_aliases() {
        let with = |mapping: &str| ImportOptions {
            mapping: Some(mapping.into()),
            ..options("u1")
        };
        let body = b"Contact,Work Mail,email,Name\nAda,ada@work.io,ada@home.io,ignored\n";
        let import =
            CsvImport::parse(body, &with("Contact:fullName, work mail:EMAIL"), 5, None).unwrap();
        assert_eq!(
            mapped(&import),
            [("Contact", "fullName"), ("Work Mail", "email")]
        );
        assert_eq!(import.mapping.attributes, ["email", "Name"]);
        assert_eq!(judged(&import.request), [ok("Ada", "ada@work.io")]);
        // The email column may be named only by the mapping.
        let import = CsvImport::parse(
            b"Who,Addr\nAda,a@x.io\n",
            &with("Who:name,Addr:email"),
            5,
            None,
        );
        assert!(import.is_err(), "name is not a field name");
        let import = CsvImport::parse(
            b"Who,Addr\nAda,a@x.io\n",
            &with("Who:fullName,Addr:email"),
            5,
            None,
        )
        .unwrap();
        assert_eq!(judged(&import.request), [ok("Ada", "a@x.io")]);
        for (mapping, says) in [
            ("Nope:email", "\"Who\", \"Addr\""),
            ("Who=email", "Header:field"),
            ("Who:company", "not a field"),
        ] {
            let refused = CsvImport::parse(b"Who,Addr\nAda,a@x.io\n", &with(mapping), 5, None);
            let text = detail(refused.unwrap_err());
            assert!(
                text.contains("/mapping") && text.contains(says),
                "{mapping}: {text}"
            );
        }
    }

    #[test]
    fn each_lead_keeps_the_line_its_record_starts_on() {
        // Header on line 1; a quoted newline (CRLF or LF) makes a record two lines long;
        // blank lines and blank records are skipped, but counted.
        let body = "name,email,notes\r\nA,a@x.io,\r\nB,b@x.io,\"x\r\ny\"\r\n\r\n,,\r\nC,\"c\n\",\r\nD,d@x.io,\r\n";
        let request = parse(body.as_bytes()).unwrap();
        assert_eq!(request.lines, [2, 3, 7, 9]);
        let lf = parse(body.replace("\r\n", "\n").as_bytes()).unwrap();
        assert_eq!(lf.lines, [2, 3, 7, 9], "LF");
        let no_terminator = parse(b"email,name\na@x.io,A\nb@x.io,B").unwrap();
        assert_eq!(no_terminator.lines, [2, 3]);
        let plan = crate::job::plan::ImportPlan::new(request, 10);
        let rejected: Vec<(u32, Option<u32>)> =
            plan.rejected.iter().map(|e| (e.index, e.line)).collect();
        assert_eq!(rejected, [(2, Some(7))], "the lead with a bad email");
        let lines: Vec<Option<u32>> = plan.chunks[0].leads.iter().map(|l| l.line).collect();
        assert_eq!(lines, [Some(2), Some(3), Some(9)]);
        // JSON leads have no line, and their errors none either.
        let json = ImportRequest::parse(br#"{"createdBy":"u","leads":[{}]}"#, 3).unwrap();
        let plan = crate::job::plan::ImportPlan::new(json, 10);
        assert_eq!(plan.rejected[0].line, None);
        assert!(
            !serde_json::to_string(&plan.rejected[0])
                .unwrap()
                .contains("line")
        );
    }

    #[test]
    fn bad_cells_fail_their_lead_and_blank_records_are_skipped() {
        let body = "name,email\nA,not-an-email\n,b@x.io\nshort\n,\n\n  ,  \nC,c@x.io\n";
        let request = parse(body.as_bytes()).unwrap();
        let codes: Vec<String> = judged(&request)
            .into_iter()
            .map(|r| r.err().unwrap_or_default())
            .collect();
        assert_eq!(codes, ["invalid_email", "required", "required", ""]);
    }

    #[test]
    fn request_level_problems_refuse_the_request() {
        let refused = |body: &str| detail(parse(body.as_bytes()).unwrap_err());
        assert!(refused("").contains("no header"));
        assert!(refused("name,phone\nA,1\n").contains(r#""name", "phone""#));
        assert!(refused("name,email\n\n").contains("/leads"));
        assert_eq!(
            parse("email\na@x.io\nb@x.io\nc@x.io\nd@x.io\ne@x.io\nf@x.io\n".as_bytes())
                .unwrap_err(),
            RequestError::TooManyLeads { max: 5 }
        );
        let without_creator = ImportRequest::parse_csv(
            b"email\na@x.io\n",
            &ImportOptions {
                import_id: Some("bad id".into()),
                ..ImportOptions::default()
            },
            5,
            None,
        );
        assert!(detail(without_creator.unwrap_err()).contains("/createdBy"));
    }

    #[test]
    fn a_verified_caller_is_the_creator_as_for_json() {
        let caller = CreatedBy::parse("me").unwrap();
        let mine = ImportRequest::parse_csv(
            b"email\na@x.io\n",
            &ImportOptions::default(),
            5,
            Some(&caller),
        )
        .unwrap();
        assert_eq!(mine.created_by, caller);
        assert_eq!(
            ImportRequest::parse_csv(b"email\na@x.io\n", &options("other"), 5, Some(&caller))
                .unwrap_err(),
            RequestError::NotTheCaller
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::Lead;
    use proptest::prelude::*;

    /// Cells as people type them, quotes, delimiters, newlines and accents included.
    fn cell() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ,;\"'\t\r\néüß@.+-]{0,12}"
    }

    fn table() -> impl Strategy<Value = Vec<[String; 7]>> {
        prop::collection::vec(
            [cell(), cell(), cell(), cell(), cell(), cell(), cell()],
            1..8,
        )
    }

    /// The lead's fields, then two columns no field takes: attributes.
    const HEADERS: [&str; 7] = [
        "fullName", "email", "phone", "status", "source", "Company", "Notes",
    ];
    const FIELDS: usize = 5;

    proptest! {
        /// Any table written as CSV (by the csv crate, with any of the delimiters) and read back
        /// gives the same judged leads as the JSON form of that table, attributes included.
        #[test]
        fn csv_and_json_forms_of_a_table_give_the_same_leads(rows in table(), delimiter in prop::sample::select(vec![b',', b';', b'\t'])) {
            // A row of blank cells is no lead in CSV; keep the tables comparable.
            let rows: Vec<[String; 7]> = rows.into_iter().filter(|r| r.iter().any(|c| !c.trim().is_empty())).collect();
            prop_assume!(!rows.is_empty());
            let mut writer = csv::WriterBuilder::new().delimiter(delimiter).from_writer(vec![]);
            writer.write_record(HEADERS).unwrap();
            for row in &rows {
                writer.write_record(row).unwrap();
            }
            let body = writer.into_inner().unwrap();
            let from_csv = ImportRequest::parse_csv(&body, &ImportOptions { created_by: Some("u".into()), ..ImportOptions::default() }, 10, None).unwrap();
            // The JSON form: a blank cell is an absent field; the other columns are attributes.
            let leads: Vec<serde_json::Value> = rows.iter().map(|row| {
                let mut map: serde_json::Map<String, serde_json::Value> = HEADERS.iter().zip(row)
                    .take(FIELDS)
                    .filter(|(_, cell)| !cell.trim().is_empty())
                    .map(|(name, cell)| ((*name).to_owned(), cell.clone().into()))
                    .collect();
                let attributes: serde_json::Map<String, serde_json::Value> = HEADERS.iter().zip(row)
                    .skip(FIELDS)
                    .map(|(name, cell)| ((*name).to_owned(), cell.clone().into()))
                    .collect();
                map.insert("attributes".into(), attributes.into());
                serde_json::Value::Object(map)
            }).collect();
            let json = serde_json::json!({"createdBy": "u", "leads": leads}).to_string();
            let from_json = ImportRequest::parse(json.as_bytes(), 10).unwrap();
            let judge = |r: &ImportRequest| r.leads.iter().map(Lead::parse).collect::<Vec<_>>();
            prop_assert_eq!(judge(&from_csv), judge(&from_json));
        }

        #[test]
        fn any_bytes_never_panic_and_rejections_are_clear(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Err(RequestError::Invalid { detail, errors }) = ImportRequest::parse_csv(&bytes, &ImportOptions { created_by: Some("u".into()), ..ImportOptions::default() }, 3, None) {
                prop_assert!(!detail.is_empty());
                for e in errors {
                    prop_assert!(e.pointer.starts_with('/') && !e.message.is_empty());
                }
            }
        }
    }
}
