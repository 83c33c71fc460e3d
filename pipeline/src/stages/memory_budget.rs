//! Byte sizes in configs: `"512MiB"`, `"2GiB"`, `"64KiB"`, `"1000000"`.

/// Parses a byte size with an optional `B`, `KiB`, `MiB` or `GiB` suffix.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "memory_budget `{text}`: unknown unit `{other}` (use B, KiB, MiB or GiB)"
            ));
        }
    };
    let n: usize = number
        .parse()
        .map_err(|_| format!("memory_budget `{text}`: expected a number such as \"512MiB\""))?;
    let bytes = n.saturating_mul(scale);
    if bytes < 1 << 20 {
        return Err(format!("memory_budget `{text}`: at least 1MiB"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes(" 2GiB "), Ok(2 << 30));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert!(parse_bytes("12MB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("1KiB").unwrap_err().contains("at least"));
    }
}
