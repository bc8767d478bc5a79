//! The Unicode fold that makes caseExact=false text compare alike (RFC 7643 §2.2, `caseExact`):
//! used for uniqueness, for folded key columns and for filters evaluated in memory. Storage folds
//! the same way in SQL (`Backend::fold_sql` in `db/dialect.rs`); a property test holds the two together.

use unicode_normalization::UnicodeNormalization;

/// Unicode-aware folding used for caseExact=false comparisons and
/// uniqueness: lowercase, with final sigma as any sigma, in NFC.
///
/// Lowercasing is done on the decomposed text and the result composed afterwards: lowercasing
/// NFC text can leave text that is not NFC (`İ` becomes `i` + U+0307 before a mark that must
/// precede it; `Υ` + U+0342 becomes `υ` + U+0342, which composes to `ῦ`), and then two spellings
/// that differ only in case folded apart. `ς` folds to `σ`, as in Unicode case folding, since
/// lowercasing writes `Σ` as either depending on its place in the word.
pub fn fold(s: &str) -> String {
    // ASCII is its own NFD and NFC, and has no final sigma: lowercasing is the whole fold.
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    fold_unicode(s)
}

fn fold_unicode(s: &str) -> String {
    let lower = s.nfd().collect::<String>().to_lowercase().replace('ς', "σ");
    lower.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_is_stable_and_ignores_case_and_normalisation() {
        // Found by the property tests: lowercasing NFC text can leave text that is not NFC.
        assert_eq!(fold("\u{130}\u{316}"), fold(&fold("\u{130}\u{316}")));
        assert_eq!(fold("\u{130}\u{316}"), fold("i\u{316}\u{307}"));
        assert_eq!(fold("\u{3a5}\u{342}"), fold("\u{3c5}\u{342}"));
        assert_eq!(fold("\u{3a5}\u{342}"), "\u{1fe6}");
        // Final sigma: one name however it is cased.
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        assert_eq!(fold("ΟΔΟΣ"), fold("Οδοσ"));
        assert_eq!(fold("José"), fold("JOSE\u{301}"));
        assert_eq!(fold("JOSÉ"), "jos\u{e9}");
    }

    #[test]
    fn the_ascii_shortcut_folds_as_the_full_fold_does() {
        let every: String = (0u8..128).map(char::from).collect();
        assert_eq!(fold(&every), fold_unicode(&every));
        for s in ["BJensen@Example.COM", "", "a b\tc", "Σ", "ǅ"] {
            assert_eq!(fold(s), fold_unicode(s), "{s:?}");
        }
    }

    #[test]
    fn fold_normalises_to_nfc_then_lowercases() {
        assert_eq!(fold("BJensen@Example.COM"), "bjensen@example.com");
        // "É" precomposed and as E + combining acute fold alike.
        assert_eq!(fold("\u{c9}cole"), fold("E\u{301}COLE"));
        assert_eq!(fold("E\u{301}COLE"), "\u{e9}cole");
        // Sigma folds to σ wherever it stands, as in Unicode case folding.
        assert_eq!(fold("ΣΊΣΥΦΟΣ"), "σίσυφοσ");
        assert_eq!(fold("σίσυφος"), "σίσυφοσ");
        assert_eq!(fold(""), "");
    }
}
