//! The userName profile: which userNames are accepted, and when two are the same account.
//!
//! RFC 7643 §4.1.1 makes userName unique and caseExact=false without saying what case means;
//! RFC 8265 says how to compare usernames, and Roster follows it with one change:
//!
//! - **Syntax** (RFC 8265 §3.1): userparts separated by U+0020 spaces, so no leading or trailing
//!   space. A trailing space from an identity provider is refused rather than trimmed: trimmed,
//!   `"admin "` would silently name someone else's account in every later comparison.
//! - **Refused outright**, with the reason in the error: control characters (tabs and newlines
//!   too), bidirectional formatting characters (an RLO can make `nimda` display as `admin`),
//!   invisible characters (Default_Ignorable_Code_Point: zero-width space and joiners, soft
//!   hyphen) and spaces other than U+0020.
//! - **Comparison**: two userNames are the same account when they are equal under Unicode
//!   compatibility caseless matching (Unicode §3.13, D146: NFKD and full case folding), which
//!   the [`user_name_key`] computes. It equates everything PRECIS UsernameCaseMapped (RFC 8265
//!   §3.3) equates — letter case, full-width letters (`ａｄｍｉｎ` is `admin`), normalisation
//!   forms — and also the pairs that lowercasing misses: `Straße`/`STRASSE`, `ſ`/`s`, `ﬁ`/`fi`.
//! - **Identifier characters**: each folded userpart must then pass PRECIS UsernameCaseMapped
//!   (IdentifierClass and the Bidi Rule), so symbols, non-ASCII punctuation and unassigned code
//!   points are refused. Folding first is the one change to RFC 8265: PRECIS refuses `ſ` or
//!   `ﬁ`, which fold to letters here.
//!
//! Mixed-script lookalikes (Cyrillic `а` beside Latin `dmin`) are accepted and are different
//! userNames, as under PRECIS: telling them apart is UTS #39 confusable detection, and refusing
//! mixed scripts would refuse real addresses such as `田中@example.com`.
//!
//! The userName is stored and returned as sent; the key is stored beside it, indexed, and is
//! what uniqueness and `userName` filters compare. Only a new userName is held to the profile:
//! one stored before it is kept by writes that leave it unchanged (`users::check_user_name`).

use icu_casemap::CaseMapper;
use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, WhiteSpace};
use icu_properties::CodePointSetData;
use precis_core::profile::PrecisFastInvocation;
use precis_core::{DerivedPropertyValue, Error as PrecisError};
use precis_profiles::UsernameCaseMapped;
use unicode_normalization::UnicodeNormalization;

/// The comparison key of a userName: its compatibility caseless form (Unicode §3.13 D146,
/// `NFKD(toCasefold(NFKD(toCasefold(NFD(X)))))`), composed to NFKC so that the stored key is
/// short. Two userNames are one account exactly when their keys are equal.
///
/// Defined for every string, also those the profile refuses: a filter value is folded the same
/// way, and simply matches nothing when no accepted userName has its key.
pub fn user_name_key(s: &str) -> String {
    // ASCII is its own NFD and NFKC, and its case folding is ASCII lowercasing.
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let fold = CaseMapper::new();
    let once: String = fold.fold_string(&s.nfd().collect::<String>()).nfkd().collect();
    fold.fold_string(&once).nfkc().collect()
}

/// Why `s` is not an acceptable userName, or `None` when it is.
pub fn refusal(s: &str) -> Option<String> {
    let code = |c: char| format!("U+{:04X}", c as u32);
    for c in s.chars() {
        if c.is_control() {
            return Some(format!("must not contain control characters, found {}", code(c)));
        }
        // No other ASCII character is a format character or a space other than U+0020.
        if c.is_ascii() {
            continue;
        }
        if CodePointSetData::new::<BidiControl>().contains(c) {
            return Some(format!("must not contain bidirectional formatting characters, found {}", code(c)));
        }
        if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) {
            return Some(format!("must not contain invisible characters, found {}", code(c)));
        }
    }
    let ends = [s.chars().next(), s.chars().last()];
    if let Some(c) = ends.into_iter().flatten().find(|c| c.is_whitespace()) {
        return Some(format!("must not begin or end with a space (RFC 8265 §3.1), found {}", code(c)));
    }
    if let Some(c) = s.chars().find(|&c| !c.is_ascii() && CodePointSetData::new::<WhiteSpace>().contains(c)) {
        return Some(format!("must separate words with U+0020 spaces only, found {}", code(c)));
    }
    // Printable ASCII is all allowed in identifiers (RFC 8264 §9.1, ASCII7).
    if s.is_ascii() {
        return None;
    }
    let key = user_name_key(s);
    for part in key.split(' ').filter(|part| !part.is_empty()) {
        match <UsernameCaseMapped as PrecisFastInvocation>::enforce(part) {
            Ok(_) => {}
            Err(PrecisError::BadCodepoint(info)) => {
                let c = char::from_u32(info.cp).map_or_else(|| format!("U+{:04X}", info.cp), code);
                let what = match info.property {
                    DerivedPropertyValue::Unassigned => "an unassigned code point",
                    DerivedPropertyValue::ContextJ | DerivedPropertyValue::ContextO => {
                        "a character not allowed where it stands"
                    }
                    _ => "a character identifiers may not contain (a symbol, punctuation or similar)",
                };
                return Some(format!(
                    "must be an identifier (RFC 8265 §3.3, PRECIS IdentifierClass), found {c}, {what}"
                ));
            }
            Err(PrecisError::Invalid) => {
                return Some(
                    "must not mix right-to-left and left-to-right text as the Bidi Rule forbids (RFC 5893 §2)"
                        .to_owned(),
                )
            }
            Err(e) => return Some(format!("must be an identifier (RFC 8265 §3.3), and is not: {e}")),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_equate_case_width_normalisation_and_full_folding() {
        assert_eq!(user_name_key("ADMIN"), "admin");
        assert_eq!(user_name_key("ａｄｍｉｎ"), "admin");
        assert_eq!(user_name_key("Straße"), user_name_key("STRASSE"));
        assert_eq!(user_name_key("ſam"), "sam");
        assert_eq!(user_name_key("Jos\u{e9}"), user_name_key("JOSE\u{301}"));
        assert_eq!(user_name_key("ΟΔΟΣ"), user_name_key("οδος"));
        assert_ne!(user_name_key("\u{430}dmin"), "admin");
    }

    #[test]
    fn refuses_what_hides_or_reorders_text() {
        for (bad, why) in [
            ("admin ", "begin or end with a space"),
            (" admin", "begin or end with a space"),
            ("ad\tmin", "control characters"),
            ("ad\u{202E}nim", "bidirectional formatting"),
            ("ad\u{200D}min", "invisible characters"),
            ("ad\u{200B}min", "invisible characters"),
            ("ad\u{a0}min", "U+0020 spaces only"),
            ("ad☃min", "identifier"),
            ("a\u{5E9}", "Bidi Rule"),
            ("\u{5E9}\u{5DC}\u{5D5}\u{5DD}@example.com", "Bidi Rule"),
        ] {
            let got = refusal(bad).unwrap_or_default();
            assert!(got.contains(why), "{bad:?}: {got:?}");
        }
    }

    #[test]
    fn accepts_addresses_and_international_names() {
        for good in [
            "bjensen@example.com",
            "o'malley+tag",
            "Barbara Jensen",
            "José",
            "Müller",
            "日本太郎",
            "ſam",
            "ａｄｍｉｎ",
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD} \u{5DB}\u{5D4}\u{5DF}",
        ] {
            assert_eq!(refusal(good), None, "{good}");
        }
    }
}
