//! Byte-level rules for URL text, shared by the forwarded-header, redirect and route-rule
//! parsers so that they agree on what a port, a plain URL byte and a percent escape are.

/// A decimal port in 1..=65535 written with digits only (no sign, no spaces).
pub fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most five digits: no overflow in a u32, and no general parser on every check.
    let value = text
        .bytes()
        .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
    u16::try_from(value).ok().filter(|&p| p != 0)
}

/// Printable ASCII other than `\`. Space, tabs, newlines, DEL, C1 controls, and every
/// non-ASCII character (including look-alike letters, full-width dots and Unicode spaces) are
/// refused: a browser would strip, map or IDNA-convert them, and a proxy may pass them raw.
pub fn is_plain_url_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'\\'
}

/// The value of one hex digit.
pub fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// The byte a `%XX` escape's two digits stand for.
pub fn decode_hex_pair(digits: &[u8]) -> Option<u8> {
    match digits {
        [high, low] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_plain_decimal_in_range() {
        for (text, expected) in [
            ("80", Some(80)),
            ("65535", Some(65535)),
            ("00080", Some(80)),
            ("0", None),
            ("65536", None),
            ("", None),
            ("+80", None),
            (" 80", None),
            ("080000", None),
            ("8a", None),
            ("99999", None),
            ("00000", None),
            ("1", Some(1)),
        ] {
            assert_eq!(parse_port(text), expected, "{text:?}");
        }
        // Every port and the next number up, as the standard parser reads them.
        for port in 0..=65_536u32 {
            let text = port.to_string();
            let reference = text.parse::<u16>().ok().filter(|&p| p != 0);
            assert_eq!(parse_port(&text), reference, "{text:?}");
        }
    }

    #[test]
    fn plain_url_bytes_are_printable_ascii_without_backslash() {
        assert!(b"az09-._~:/?#[]@!$&'()*+,;=%"
            .iter()
            .all(|&b| is_plain_url_byte(b)));
        assert!(b" \t\r\n\\\x7f\x00".iter().all(|&b| !is_plain_url_byte(b)));
        assert!(!is_plain_url_byte(0xc3));
    }

    #[test]
    fn hex_pairs_decode() {
        assert_eq!(decode_hex_pair(b"2f"), Some(0x2f));
        assert_eq!(decode_hex_pair(b"2F"), Some(0x2f));
        assert_eq!(decode_hex_pair(b"g0"), None);
        assert_eq!(decode_hex_pair(b"2"), None);
        assert_eq!(hex_value(b'e'), Some(14));
    }
}
