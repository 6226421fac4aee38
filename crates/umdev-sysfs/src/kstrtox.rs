//! Number parsing of sysfs stores (lib/kstrtox.c `kstrtoull` with base 0,
//! and the narrower `kstrtou16`).

use rustix::io::Errno;

/// `kstrtoull(buf, 0, &val)`: an optional '+', then "0x"/"0X" selects
/// base 16, a leading '0' base 8, else base 10; at least one digit; one
/// trailing newline allowed. EINVAL for anything else, ERANGE on overflow.
pub(crate) fn kstrtoull(buf: &[u8]) -> Result<u64, Errno> {
    let s = buf.strip_prefix(b"+").unwrap_or(buf);
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    let (radix, digits): (u32, &[u8]) = match s {
        [b'0', x, rest @ ..] if x.eq_ignore_ascii_case(&b'x') => (16, rest),
        [b'0', ..] => (8, s),
        _ => (10, s),
    };
    if digits.is_empty() {
        return Err(Errno::INVAL);
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = char::from(b).to_digit(radix).ok_or(Errno::INVAL)?;
        acc.checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(Errno::RANGE)
    })
}

/// `kstrtou16(buf, 0, &val)`: as [`kstrtoull`], ERANGE above `u16::MAX`.
pub(crate) fn kstrtou16(buf: &[u8]) -> Result<u16, Errno> {
    u16::try_from(kstrtoull(buf)?).map_err(|_| Errno::RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_kstrtox() {
        assert_eq!(kstrtou16(b"4\n"), Ok(4));
        assert_eq!(kstrtou16(b"0x10"), Ok(16));
        assert_eq!(kstrtou16(b"010"), Ok(8));
        assert_eq!(kstrtou16(b"+0"), Ok(0));
        assert_eq!(kstrtou16(b"65536"), Err(Errno::RANGE));
        assert_eq!(kstrtoull(b"99999999999999999999"), Err(Errno::RANGE));
        for bad in [&b""[..], b"\n", b"-1", b" 1", b"1 ", b"08", b"0x", b"1\n\n"] {
            assert_eq!(kstrtou16(bad), Err(Errno::INVAL), "{bad:?}");
        }
    }
}
