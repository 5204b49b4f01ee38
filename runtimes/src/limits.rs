//! Per-run limits, their defaults, and the parsers for human-written values.

use std::time::Duration;

/// The largest linear memory a 32-bit guest can address.
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;
/// The longest timeout accepted: long enough for any real job, short enough
/// that deadline arithmetic never overflows.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one run may consume. Every field has a default that is safe for
/// untrusted code; see [`Limits::default`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for one `run`, enforced by epoch interruption (a busy
    /// loop) and by a host-side deadline (a guest waiting on a host call, a
    /// sleep or stdin). Default: 30 s.
    pub timeout: Duration,
    /// Linear memory the guest may grow to, summed over all its memories.
    /// Default: 256 MiB.
    pub memory_bytes: u64,
    /// Bytes the guest may write to stdout, and separately to stderr, in one
    /// run. Writing past it ends the run with [`crate::Status::OutputLimit`].
    /// Default: 1 MiB.
    pub max_output_bytes: u64,
    /// Host calls (`call`, and each call of a batch) one run may make.
    /// Default: 10,000.
    pub max_host_calls: u64,
    /// Bytes of JSON in one host call's arguments, and in its result.
    /// Default: 1 MiB. Calls carrying file contents (`fs.read_text`,
    /// `fs.write_text`) may carry as much as [`crate::FsLimits`] allows.
    pub max_host_payload_bytes: u64,
    /// Calls in one batch (`asyncio.gather` / `Promise.all` over host calls).
    /// Default: 1,000.
    pub max_batch_calls: u64,
    /// Calls of one batch that run at the same time. Default: 16.
    pub max_concurrent_host_calls: u64,
    /// Bytes of JSON the results of one batch may hold together: the host
    /// keeps a batch's results until the last call ends, so this bounds what
    /// one batch can make it hold. Results past it become errors.
    /// Default: 32 MiB.
    pub max_batch_result_bytes: u64,
    /// Host files and directories the guest may hold open at once: what its
    /// plain file calls (`open()`, `os.listdir`, ...) have open, plus the
    /// `fs` module's calls in flight. Each is a descriptor of the host
    /// process, whose supply is shared by every session (and, in the daemon,
    /// by every connection): past it, opening fails in the guest with an
    /// `OSError`. The mounts' own directory handles (two per mount, held
    /// for the session's life) are not counted. Default: 256.
    pub max_open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            memory_bytes: 256 << 20,
            max_output_bytes: 1 << 20,
            max_host_calls: 10_000,
            max_host_payload_bytes: 1 << 20,
            max_batch_calls: 1_000,
            max_concurrent_host_calls: 16,
            max_batch_result_bytes: 32 << 20,
            max_open_files: 256,
        }
    }
}

/// A limit value that could not be understood, or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("invalid size `{0}` (expected a number with an optional unit: `64MiB`, `512k`, `1g`)")]
    BadSize(String),
    #[error("invalid duration `{0}` (expected a number with a unit: `500ms`, `1s`, `2.5s`, `1m`)")]
    BadDuration(String),
    #[error("`{value}` is out of range: {what}")]
    OutOfRange { value: String, what: &'static str },
}

/// Parses a byte size: a number (decimal fractions allowed) with an optional
/// unit `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`/`gb`/`gib` in any case. Every
/// unit is binary (`1k` = 1024 bytes), as memory is counted in pages of 64 KiB.
pub fn parse_size(text: &str) -> Result<u64, LimitError> {
    let bad = || LimitError::BadSize(text.to_string());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = parse_scaled(number, multiplier as f64).ok_or_else(bad)?;
    Ok(bytes)
}

/// Parses a duration: a number (decimal fractions allowed) with a unit `ms`,
/// `s`, `m` or `h`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, LimitError> {
    let bad = || LimitError::BadDuration(text.to_string());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let nanos_per_unit: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => 1e9,
        "ms" => 1e6,
        "us" | "µs" => 1e3,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return Err(bad()),
    };
    let nanos = parse_scaled(number, nanos_per_unit).ok_or_else(bad)?;
    Ok(Duration::from_nanos(nanos))
}

/// `number * scale`, rounded, for a plain non-negative decimal `number`;
/// `None` when it is not one or the product does not fit a u64.
fn parse_scaled(number: &str, scale: f64) -> Option<u64> {
    let well_formed = !number.is_empty()
        && number.chars().filter(|&c| c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    if !well_formed {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let product = (value * scale).round();
    (product.is_finite() && product < u64::MAX as f64).then_some(product as u64)
}

/// A duration as a user writes one (`0`, `250ms`, `8d`), not as Rust's
/// `Debug` does (`0ns`, `691200s`).
fn show_duration(duration: Duration) -> String {
    const DAY: u64 = 24 * 60 * 60;
    let (secs, nanos) = (duration.as_secs(), duration.subsec_nanos());
    match (secs, nanos) {
        (0, 0) => "0".into(),
        (s, 0) if s % DAY == 0 => format!("{}d", s / DAY),
        (s, 0) => format!("{s}s"),
        (_, n) if n % 1_000_000 == 0 => format!("{}ms", duration.as_millis()),
        _ => format!("{duration:?}"),
    }
}

impl Limits {
    /// Checks every field is in range: a positive timeout up to
    /// [`MAX_TIMEOUT`], memory from 1 MiB up to [`MAX_MEMORY_BYTES`], a
    /// positive output cap.
    pub fn validate(&self) -> Result<(), LimitError> {
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(LimitError::OutOfRange {
                value: show_duration(self.timeout),
                what: "the timeout must be more than 0 and at most 7 days",
            });
        }
        if self.memory_bytes < (1 << 20) || self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(LimitError::OutOfRange {
                value: format!("{} bytes", self.memory_bytes),
                what: "memory must be at least 1MiB and at most 4GiB (guests are 32-bit)",
            });
        }
        if self.max_output_bytes == 0 {
            return Err(LimitError::OutOfRange {
                value: "0".into(),
                what: "the output cap must be at least 1 byte",
            });
        }
        if self.max_batch_calls == 0 || self.max_concurrent_host_calls == 0 {
            return Err(LimitError::OutOfRange {
                value: "0".into(),
                what: "batches and host-call concurrency must allow at least 1 call",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("64MiB", 64 << 20),
            ("64mib", 64 << 20),
            ("64M", 64 << 20),
            ("1g", 1 << 30),
            ("1GB", 1 << 30),
            ("512k", 512 << 10),
            ("1048576", 1 << 20),
            ("1.5k", 1536),
            (" 2 MiB ", 2 << 20),
            ("4GiB", 4 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for text in [
            "",
            "MiB",
            "-1",
            "1x",
            "1..2k",
            "1e9",
            "k64",
            "ten",
            "99999999999999999999t",
        ] {
            assert!(parse_size(text).is_err(), "{text} should be rejected");
        }
    }

    #[test]
    fn durations() {
        for (text, expected) in [
            ("1s", Duration::from_secs(1)),
            ("500ms", Duration::from_millis(500)),
            ("2.5s", Duration::from_millis(2500)),
            ("1m", Duration::from_secs(60)),
            ("3", Duration::from_secs(3)),
            ("1h", Duration::from_secs(3600)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for text in ["", "s", "-1s", "1 fortnight", "1.2.3s", "abc"] {
            assert!(parse_duration(text).is_err(), "{text} should be rejected");
        }
    }

    const DAY_SECS: u64 = 24 * 60 * 60;

    #[test]
    fn validation_edges() {
        let ok = Limits::default();
        assert_eq!(ok.validate(), Ok(()));
        let check = |f: fn(&mut Limits)| {
            let mut limits = Limits::default();
            f(&mut limits);
            limits.validate()
        };
        assert!(check(|l| l.timeout = Duration::ZERO).is_err());
        // Said as a user writes it, not Rust's `0ns`.
        let zero = check(|l| l.timeout = Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(zero.starts_with("`0` is out of range"), "{zero}");
        let long = check(|l| l.timeout = MAX_TIMEOUT + Duration::from_secs(DAY_SECS));
        assert!(
            long.unwrap_err()
                .to_string()
                .starts_with("`8d` is out of range")
        );
        let odd = check(|l| l.timeout = MAX_TIMEOUT + Duration::from_millis(1500));
        assert!(
            odd.unwrap_err()
                .to_string()
                .starts_with("`604801500ms` is out")
        );
        assert!(check(|l| l.timeout = MAX_TIMEOUT).is_ok());
        assert!(check(|l| l.timeout = MAX_TIMEOUT + Duration::from_secs(1)).is_err());
        assert!(check(|l| l.memory_bytes = 1 << 20).is_ok());
        assert!(check(|l| l.memory_bytes = (1 << 20) - 1).is_err());
        assert!(check(|l| l.memory_bytes = MAX_MEMORY_BYTES).is_ok());
        assert!(check(|l| l.memory_bytes = MAX_MEMORY_BYTES + 1).is_err());
        assert!(check(|l| l.max_output_bytes = 0).is_err());
        assert!(check(|l| l.max_output_bytes = 1).is_ok());
        assert!(check(|l| l.max_batch_calls = 0).is_err());
        assert!(check(|l| l.max_concurrent_host_calls = 0).is_err());
        assert!(
            check(|l| l.max_host_calls = 0).is_ok(),
            "0 host calls is a valid policy"
        );
    }
}
