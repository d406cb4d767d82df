use super::FieldError;
use email_address::{EmailAddress, Options};
use icu_casemap::CaseMapper;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A lead's email address, in the one spelling a person's address is stored under: trimmed,
/// in Unicode normalization form C, lower-cased (letters that share one capital, as final and
/// medial sigma, taken as one), its domain in IDNA ASCII form (A-labels,
/// `xn--…`), syntactically valid, at most 254 characters.
///
/// The unique index in Postgres is on this spelling, so it decides what "one lead per person"
/// means. Lower-casing the whole address (not just the domain) follows CRMs, which treat
/// `John@X.com` and `john@x.com` as the same person. Composed and decomposed accents (NFC and
/// NFD), upper and lower case, and a domain written in Unicode or as its `xn--` form (or with
/// full-width letters and dots, which IDNA maps to ASCII) all give one spelling. Characters
/// that do not show, or show as a space (controls, zero-width and bidirectional formatting
/// characters, non-ASCII spaces), are refused rather than removed: two addresses that look
/// the same must not be stored as two people, and one that differs from what the reader
/// sees is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

const MAX_LEN: usize = 254;
/// Longer input is refused before any normalization, whose cost grows with it. Generous: a
/// decomposed (NFD) address of `MAX_LEN` characters may take several bytes per character.
const MAX_INPUT_BYTES: usize = 16 * MAX_LEN;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("email", "required", "email is required"));
        }
        if trimmed.len() > MAX_INPUT_BYTES {
            return Err(too_long());
        }
        if let Some(reason) = trimmed.chars().find_map(unseen) {
            return Err(FieldError::new(
                "email",
                "invalid_email",
                format!("email must not contain {reason}"),
            ));
        }
        let lowered = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            // Letters that share one capital are one letter: after lower-casing, each takes
            // the lower case of its simple case folding (final `ς` is `σ`, `ſ` is `s`, `µ` is
            // `μ`; `ß` stays `ß`, since folding it to `ss` would change the mailbox). That may
            // leave a sequence out of NFC, hence the second pass.
            let case = CaseMapper::new();
            let composed: String = trimmed.nfc().collect();
            composed
                .to_lowercase()
                .chars()
                .map(|c| case.simple_lowercase(case.simple_fold(c)))
                .nfc()
                .collect()
        };
        // Checked again once the domain is in ASCII form, which may be longer.
        if lowered.chars().count() > MAX_LEN {
            return Err(too_long());
        }
        let invalid = || FieldError::new("email", "invalid_email", "email is not a valid address");
        let (local, domain) = lowered.rsplit_once('@').ok_or_else(invalid)?;
        let ascii_domain = Uts46::new()
            .to_ascii(
                domain.as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::CheckFirstLast,
                DnsLength::Verify,
            )
            .map_err(|_| {
                FieldError::new(
                    "email",
                    "invalid_email",
                    "email's domain is not a valid domain name",
                )
            })?;
        let normalized = if ascii_domain == domain {
            lowered
        } else {
            format!("{local}@{ascii_domain}")
        };
        if normalized.chars().count() > MAX_LEN {
            return Err(too_long());
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        if EmailAddress::parse_with_options(&normalized, options).is_err() {
            return Err(invalid());
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn too_long() -> FieldError {
    FieldError::new(
        "email",
        "too_long",
        format!("email must be at most {MAX_LEN} characters"),
    )
}

/// Why `c` may not be in an address, if it may not: it does not show, or shows as a space.
fn unseen(c: char) -> Option<&'static str> {
    if c.is_ascii() {
        return c.is_ascii_control().then_some("control characters");
    }
    match c.general_category() {
        GeneralCategory::Control => Some("control characters"),
        GeneralCategory::Format => Some(
            "invisible formatting characters (zero-width characters or bidirectional controls)",
        ),
        GeneralCategory::SpaceSeparator
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => Some("spaces or line breaks"),
        // Not formatting characters, yet drawn as nothing: the Hangul fillers and the
        // combining grapheme joiner.
        _ if matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{034F}'
        ) =>
        {
            Some("invisible characters")
        }
        _ => None,
    }
}

/// The normalized text, moved out (no copy) into the stored lead.
impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            Email::parse("  John.Doe@Example.COM ").unwrap().as_str(),
            "john.doe@example.com"
        );
    }

    #[test]
    fn accepts_plus_addressing_and_subdomains() {
        assert!(Email::parse("a+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "john@",
            "john@@x.com",
            "john doe@x.com",
            "john@localhost",
            "john@[127.0.0.1]",
            "John <john@x.com>",
        ] {
            let err = Email::parse(bad).expect_err(bad);
            assert_eq!(err.field, "email");
        }
    }

    #[test]
    fn required_code_for_blank() {
        assert_eq!(Email::parse("  ").unwrap_err().code, "required");
    }

    #[test]
    fn one_spelling_for_what_looks_the_same() {
        for (a, b) in [
            // NFC and NFD.
            ("caf\u{e9}@example.com", "cafe\u{301}@example.com"),
            // Case, in any script.
            ("ÜBER.ΑΒΓ@BÜCHER.DE", "über.αβγ@bücher.de"),
            // Sigma, whose lower case depends on where it stands.
            ("ΟΔΟΣ@X.GR", "οδοσ@x.gr"),
            ("οδος@x.gr", "οδοσ@x.gr"),
            // A Unicode domain and its A-label form.
            ("a@bücher.example", "a@xn--bcher-kva.example"),
            ("a@BÜCHER.example", "a@XN--BCHER-KVA.EXAMPLE"),
            // Full-width letters and dot, which IDNA maps to ASCII.
            ("a@ｅｘａｍｐｌｅ．ｃｏｍ", "a@example.com"),
        ] {
            let (a, b) = (Email::parse(a).expect(a), Email::parse(b).expect(b));
            assert_eq!(a, b);
        }
        assert_eq!(
            Email::parse("Jöhn@Bücher.Example").unwrap().as_str(),
            "jöhn@xn--bcher-kva.example"
        );
    }

    #[test]
    fn refuses_what_does_not_show_and_says_why() {
        for (raw, why) in [
            ("a\u{200b}@b.co", "zero-width"),
            ("\u{feff}a@b.co", "zero-width"),
            ("a@b\u{200d}.co", "zero-width"),
            ("a\u{202e}oc.b@a", "bidirectional"),
            ("a\u{2066}b@c.co", "bidirectional"),
            ("a\u{ad}b@c.co", "invisible"),
            ("a\u{a0}b@c.co", "spaces"),
            ("a\u{3000}b@c.co", "spaces"),
            ("a\u{2028}b@c.co", "line breaks"),
            ("\"a\tb\"@c.co", "control"),
            ("a\u{85}b@c.co", "control"),
            ("a\u{3164}b@c.co", "invisible"),
        ] {
            let err = Email::parse(raw).expect_err(raw);
            assert_eq!(err.code, "invalid_email", "{raw:?}");
            assert!(err.message.contains(why), "{raw:?}: {}", err.message);
            assert!(!err.message.contains('@'), "the message quotes no address");
        }
    }

    #[test]
    fn refuses_domains_idna_refuses() {
        for bad in [
            "a@xn--zz.com",
            "a@-bad.com",
            "a@b_c.com",
            "a@b!c.com",
            "a@\u{300}b.com",
        ] {
            let err = Email::parse(bad).expect_err(bad);
            assert_eq!(err.code, "invalid_email", "{bad}");
        }
    }

    #[test]
    fn rejects_over_254_chars() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert!(long.len() > 254);
        assert_eq!(Email::parse(&long).unwrap_err().code, "too_long");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::strategies::text;
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    /// Local parts and domain labels in scripts whose letters have one upper and one lower
    /// case (Latin with accents, Greek without the final sigma, Cyrillic), so that upper-casing
    /// an address spells the same address.
    const LOCAL: &str = "[a-z0-9à-öø-þα-ρσ-ωа-я_+-]{1,6}(\\.[a-z0-9à-öø-þα-ρσ-ωа-я_+-]{1,6}){0,2}";
    const LABEL: &str = "[a-z0-9à-öø-þ]{1,10}|[α-ρσ-ω]{1,10}|[а-я]{1,10}";
    const TLD: &str = "[a-z]{2,4}";

    /// Two spellings of one address: stored as one email, or the second refused; never as two.
    fn same_or_refused(
        first: Result<Email, FieldError>,
        second: Result<Email, FieldError>,
    ) -> Result<(), TestCaseError> {
        if let (Ok(first), Ok(second)) = (first, second) {
            prop_assert_eq!(first, second);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn never_panics_and_normalization_is_idempotent(raw in prop_oneof![text(), "[ \\PC\u{200b}\u{202e}\u{feff}]{1,12}@[\\PC]{1,12}\\.[a-zA-Z]{2,4}"]) {
            match Email::parse(&raw) {
                Ok(email) => {
                    prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                    prop_assert_eq!(email.as_str(), email.as_str().trim().to_lowercase());
                    prop_assert!(email.as_str().chars().count() <= MAX_LEN);
                    prop_assert!(unicode_normalization::is_nfc(email.as_str()));
                    prop_assert!(!email.as_str().chars().any(|c| unseen(c).is_some()));
                    prop_assert!(email.as_str().rsplit_once('@').unwrap().1.is_ascii());
                }
                Err(e) => {
                    prop_assert_eq!(e.field, "email");
                    prop_assert!(!e.message.is_empty() && !e.code.is_empty());
                }
            }
        }

        #[test]
        fn nfc_and_nfd_are_one_email(local in LOCAL, label in LABEL, tld in TLD) {
            let raw = format!("{local}@{label}.{tld}");
            let composed: String = raw.nfc().collect();
            let decomposed: String = raw.nfd().collect();
            let stored = Email::parse(&composed);
            prop_assert!(stored.is_ok(), "{:?}", stored);
            same_or_refused(stored, Email::parse(&decomposed))?;
        }

        #[test]
        fn upper_and_lower_case_are_one_email(local in LOCAL, label in LABEL, tld in TLD) {
            let raw = format!("{local}@{label}.{tld}");
            let stored = Email::parse(&raw);
            prop_assert!(stored.is_ok(), "{:?}", stored);
            same_or_refused(stored, Email::parse(&raw.to_uppercase()))?;
        }

        #[test]
        fn a_unicode_domain_and_its_a_labels_are_one_email(local in LOCAL, labels in prop::collection::vec(LABEL, 1..3), tld in TLD) {
            let unicode = format!("{local}@{}.{tld}", labels.join("."));
            // The A-label form, built label by label with Punycode (RFC 3492).
            let a_labels: Vec<String> = labels
                .iter()
                .map(|label| {
                    let label: String = label.nfc().collect();
                    if label.is_ascii() {
                        label
                    } else {
                        format!("xn--{}", idna::punycode::encode_str(&label).unwrap())
                    }
                })
                .collect();
            let ascii = format!("{local}@{}.{tld}", a_labels.join("."));
            let stored = Email::parse(&unicode);
            prop_assert!(stored.is_ok(), "{:?}", stored);
            let domain = stored.as_ref().unwrap().as_str().rsplit_once('@').unwrap().1.to_owned();
            prop_assert!(domain.is_ascii(), "{}", domain);
            same_or_refused(stored, Email::parse(&ascii))?;
        }

        #[test]
        fn case_and_surrounding_space_do_not_matter(
            local in "[a-z0-9._+-]{1,16}",
            domain in "[a-z0-9]{1,10}\\.[a-z]{2,4}",
            pad in "[ \t]{0,3}",
        ) {
            let raw = format!("{local}@{domain}");
            let upper = format!("{pad}{}{pad}", raw.to_uppercase());
            prop_assert_eq!(Email::parse(&raw).ok(), Email::parse(&upper).ok());
        }
    }
}
