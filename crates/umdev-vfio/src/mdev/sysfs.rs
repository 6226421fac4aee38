//! The number parsing of sysfs stores (lib/kstrtox.c).

/// `kstrtoul(buf, 0, &val)` on a sysfs store buffer: the buffer ends at
/// its first NUL (sysfs hands the store a NUL-terminated copy); an
/// optional '+', then "0x"/"0X" followed by a hex digit selects base 16, a
/// leading '0' base 8, otherwise base 10; at least one digit; one trailing
/// newline allowed; nothing else. Overflow fails too.
pub(super) fn kstrtoul(buf: &[u8]) -> Option<u64> {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let s = &buf[..end];
    let s = s.strip_prefix(b"+").unwrap_or(s);
    let (radix, digits) = match s {
        [b'0', x, d, ..] if x.eq_ignore_ascii_case(&b'x') && d.is_ascii_hexdigit() => (16, &s[2..]),
        [b'0', ..] => (8, s),
        _ => (10, s),
    };
    let n = digits
        .iter()
        .take_while(|&&b| char::from(b).is_digit(radix))
        .count();
    if n == 0 {
        return None;
    }
    let rest = &digits[n..];
    if !rest.strip_prefix(b"\n").unwrap_or(rest).is_empty() {
        return None;
    }
    digits[..n].iter().try_fold(0u64, |acc, &b| {
        let d = u64::from(char::from(b).to_digit(radix)?);
        acc.checked_mul(u64::from(radix))?.checked_add(d)
    })
}

#[cfg(test)]
mod tests {
    use super::kstrtoul;

    #[test]
    fn accepts_what_kstrtoul_accepts() {
        let ok: [(&[u8], u64); 8] = [
            (b"1", 1),
            (b"1\n", 1),
            (b"+7", 7),
            (b"0x1f", 31),
            (b"0X1F\n", 31),
            (b"010", 8),
            (b"0", 0),
            (b"2\0junk", 2),
        ];
        for (s, v) in ok {
            assert_eq!(kstrtoul(s), Some(v), "{s:?}");
        }
    }

    #[test]
    fn rejects_the_rest() {
        let bad: [&[u8]; 9] = [
            b"",
            b"\n",
            b"-1",
            b" 1",
            b"1 ",
            b"1\n\n",
            b"08",
            b"0x",
            b"18446744073709551616",
        ];
        for s in bad {
            assert_eq!(kstrtoul(s), None, "{s:?}");
        }
    }
}
