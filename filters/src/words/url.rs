//! spaCy's `URL_MATCH` (`spacy/lang/tokenizer_exceptions.py`): a chunk that is a URL stays one
//! token. The private-network exclusions, lookaheads in spaCy's pattern, are checked on the
//! captured address instead.

use std::sync::LazyLock;

use regex::Regex;

static URL: LazyLock<Regex> = LazyLock::new(|| {
    let host = r"[A-Za-z0-9\x{a1}-\x{ffff}]";
    let pattern = format!(
        r"^(?:[\w+\-.]{{2,}}://)?(?:\S+(?::\S*)?@)?(?:(?P<ip>(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{{1,2}}|2[0-4]\d|25[0-5])){{2}}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4])))|(?:(?:{host}[A-Za-z0-9\x{{a1}}-\x{{ffff}}_-]{{0,62}})?{host}\.)+\p{{Ll}}{{2,63}})(?::\d{{2,5}})?(?:[/?#]\S*)?$"
    );
    Regex::new(&pattern).expect("the URL pattern is valid")
});

/// Whether spaCy's `URL_MATCH` matches the whole of `s`.
pub(super) fn is_url(s: &str) -> bool {
    // Every URL the pattern accepts has a dot (a domain or a dotted address).
    if !s.contains('.') {
        return false;
    }
    // The match test needs no capture groups, so it is faster than the search that captures the
    // address; that search is needed only for a dotted address, which has digits.
    if !URL.is_match(s) {
        return false;
    }
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return true;
    }
    match URL.captures(s) {
        None => false,
        Some(caps) => caps.name("ip").is_none_or(|ip| !is_private(ip.as_str())),
    }
}

/// spaCy's excluded networks: 10/8, 127/8, 169.254/16, 192.168/16, 172.16/12.
fn is_private(ip: &str) -> bool {
    let octets: Vec<u32> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    matches!(
        octets.as_slice(),
        [10 | 127, ..] | [169, 254, ..] | [192, 168, ..] | [172, 16..=31, ..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_spacy_sees_them() {
        for url in [
            "https://example.com/a-b",
            "www.rust-lang.org",
            "example.com:8080/x?y=1",
            "8.8.8.8",
            "a1.example.com",
            "v2.example.com/x1",
        ] {
            assert!(is_url(url), "{url}");
        }
        for not in [
            "stdio.h",
            "10.0.0.1",
            "192.168.1.1:8080/x",
            "a.B",
            "hello",
            "3.14",
        ] {
            assert!(!is_url(not), "{not}");
        }
    }
}
