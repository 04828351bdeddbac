//! TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, the current and the previous step
//! accepted, each step usable once per user (the last accepted step is stored by the caller).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u32 = 6;
/// 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// A fresh secret from the OS CSPRNG, base32 (no padding) as authenticator apps expect.
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(data_encoding::BASE32_NOPAD.encode(&bytes))
}

/// The code of `secret` at time step `step`.
pub fn code_at(secret_b32: &str, step: u64) -> anyhow::Result<String> {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .map_err(|e| anyhow::anyhow!("malformed TOTP secret: {e}"))?;
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    Ok(format!("{:06}", bin % 10u32.pow(DIGITS)))
}

pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The step a code matches — the current or the previous one, and only if it is later than
/// `last_used_step` (so a code is never accepted twice).
pub fn verify(secret_b32: &str, code: &str, now: u64, last_used_step: Option<u64>) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    for step in [current, current.saturating_sub(1)] {
        if last_used_step.is_some_and(|last| step <= last) {
            continue;
        }
        let expected = code_at(secret_b32, step).ok()?;
        if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into() {
            return Some(step);
        }
    }
    None
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The URI as a QR code, a PNG `data:` URL.
pub fn qr_png_data_url(uri: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())?;
    let width = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (4usize, 4usize);
    let side = (width + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            for dy in 0..scale {
                let row = (y * scale + dy) * side;
                pixels[row + x * scale..row + x * scale + scale].fill(0);
            }
        }
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(&pixels)?;
    }
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png_bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed "12345678901234567890", truncated to 6 digits.
    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
        for (t, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(code_at(&secret, step_of(t)).unwrap(), code, "t={t}");
        }
    }

    #[test]
    fn accepts_the_current_and_previous_step_once_and_nothing_older() {
        let secret = new_secret().unwrap();
        let now = 1_800_000_000;
        let current = code_at(&secret, step_of(now)).unwrap();
        let previous = code_at(&secret, step_of(now) - 1).unwrap();
        let older = code_at(&secret, step_of(now) - 2).unwrap();
        assert_eq!(verify(&secret, &current, now, None), Some(step_of(now)));
        assert_eq!(
            verify(&secret, &previous, now, None),
            Some(step_of(now) - 1)
        );
        assert_eq!(verify(&secret, &older, now, None), None);
        assert_eq!(
            verify(&secret, &current, now, Some(step_of(now))),
            None,
            "a replay is refused"
        );
        assert_eq!(verify(&secret, "12345", now, None), None);
    }

    #[test]
    fn secrets_have_160_bits_and_the_qr_code_is_a_png() {
        let s = new_secret().unwrap();
        assert_eq!(
            data_encoding::BASE32_NOPAD
                .decode(s.as_bytes())
                .unwrap()
                .len(),
            20
        );
        let uri = otpauth_uri("City Events", "ann@example.com", &s);
        assert!(uri.starts_with("otpauth://totp/City%20Events:ann%40example.com?secret="));
        let url = qr_png_data_url(&uri).unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(url.strip_prefix("data:image/png;base64,").unwrap())
            .unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
