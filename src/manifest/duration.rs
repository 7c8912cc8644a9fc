//! Human durations such as `500ms`, `30s`, `10m`, `1h30m`.

use std::fmt;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as a sequence of `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason} (expected e.g. `500ms`, `30s`, `10m`, `1h30m`)")]
pub struct ParseDurationError {
    pub input: String,
    pub reason: &'static str,
}

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(StdDuration::from_secs(secs))
    }

    pub fn as_std(self) -> StdDuration {
        self.0
    }

    pub fn parse(input: &str) -> Result<Self, ParseDurationError> {
        let err = |reason| ParseDurationError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total_ms: u128 = 0;
        let mut last_rank = u8::MAX;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(err("a number must come before each unit"));
            }
            let number: u128 = s[start..i]
                .parse()
                .map_err(|_| err("the number is too large"))?;
            let ustart = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let (factor, rank) = match &s[ustart..i] {
                "ms" => (1, 0),
                "s" => (1_000, 1),
                "m" => (60_000, 2),
                "h" => (3_600_000, 3),
                "d" => (86_400_000, 4),
                "" => return Err(err("each number needs a unit (ms, s, m, h or d)")),
                _ => return Err(err("unknown unit (use ms, s, m, h or d)")),
            };
            if rank >= last_rank {
                return Err(err("units must go from largest to smallest, each once"));
            }
            last_rank = rank;
            total_ms = number
                .checked_mul(factor)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(|| err("the duration is too large"))?;
        }
        let ms = u64::try_from(total_ms).map_err(|_| err("the duration is too large"))?;
        Ok(Self(StdDuration::from_millis(ms)))
    }
}

impl fmt::Display for Duration {
    /// The shortest form that parses back to the same value: `1h30m`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Duration {
    type Err = ParseDurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// What a bare whole number where a duration goes should have been.
fn bare_number(n: impl fmt::Display) -> String {
    format!("a duration is a string with a unit: write \"{n}s\" for {n} seconds (or \"{n}m\", \"{n}ms\"), not the bare number {n}")
}

/// Takes a duration's string; a bare number (`timeout = 120`, as YAML-based tools write
/// seconds) is told the string to write instead of serde's "expected a string".
struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration as a string with units, e.g. \"30s\" or \"1h30m\"")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
        Duration::parse(s).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
        Err(E::custom(bare_number(n)))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
        Err(E::custom(bare_number(n)))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "a duration is a string of whole numbers with units, e.g. \"1m30s\" or \"1500ms\", not the number {n}"
        )))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration: numbers with units ms, s, m, h, d, largest first, e.g. `500ms`, `30s`, `1h30m`.",
            "pattern": "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u128 {
        Duration::parse(s)
            .map(|d| d.0.as_millis())
            .unwrap_or(u128::MAX)
    }

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("10m"), 600_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("1d2h3m4s5ms"), 93_784_005);
        assert_eq!(ms("0s"), 0);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "10",
            "10x",
            "m",
            "1m1h",
            "1s1s",
            "-1s",
            "1.5s",
            "1 s",
            "99999999999999999999999d",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["500ms", "30s", "10m", "1h30m", "2d", "1h0m1s"] {
            let d = Duration::parse(s).expect("valid");
            assert_eq!(Duration::parse(&d.to_string()), Ok(d), "{s}");
        }
        assert_eq!(Duration::parse("90m").expect("valid").to_string(), "1h30m");
    }
}
