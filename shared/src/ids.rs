//! Ids every domain issues.

/// A sortable, unique id with a prefix: `<prefix>_<12 hex digits of Unix millis><16 random hex
/// digits>`, e.g. `usr_019a4f0c2b1e5d3c2a1b0f9e8d7c`.
pub fn new_id(prefix: &str) -> anyhow::Result<String> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let mut buf = [0u8; 8];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(format!(
        "{prefix}_{millis:012x}{:016x}",
        u64::from_be_bytes(buf)
    ))
}

/// A uniform random number in [0, 1), for retry jitter.
pub fn unit_random() -> f64 {
    let mut b = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut b);
    u32::from_le_bytes(b) as f64 / (u32::MAX as f64 + 1.0)
}

/// SHA-256 of `value` in lowercase hex (64 characters): a fixed-length id derived from longer
/// parts (an SQS deduplication id is at most 128 characters).
pub fn digest_hex(value: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
