//! Quoting outside input back in an error message: at most a short prefix of it, so that a
//! 10,000-character game id or topic is not echoed whole (into answers, and into logs).

/// The characters of outside input an error message repeats.
pub const EXCERPT_CHARS: usize = 40;

/// `text` as it can be quoted in an error: whole if short, else its first
/// [`EXCERPT_CHARS`] characters and how long it was.
pub fn excerpt(text: &str) -> String {
    let mut chars = text.char_indices();
    match chars.nth(EXCERPT_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character() {
        assert_eq!(excerpt("7471"), "7471");
        let exact = "x".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let long = "é".repeat(10_000);
        let cut = excerpt(&long);
        assert!(cut.starts_with(&"é".repeat(EXCERPT_CHARS)));
        assert!(cut.ends_with("… (20000 bytes)"), "{cut}");
        assert!(cut.chars().count() < EXCERPT_CHARS + 20);
    }
}
