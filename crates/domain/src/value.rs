//! Value objects. Each one parses: an invalid value cannot be constructed,
//! and the error names the field and the reason.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a value was refused, and which field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValueError {
    pub field: &'static str,
    pub reason: String,
}

impl ValueError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Text that is not blank (after trimming) and at most `MAX` characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct NonEmptyText<const MAX: usize>(String);

/// Short text: names, titles, labels.
pub type ShortText = NonEmptyText<200>;
/// Long text: descriptions, comments, bodies.
pub type LongText = NonEmptyText<100_000>;

impl<const MAX: usize> NonEmptyText<MAX> {
    pub fn parse(field: &'static str, value: impl Into<String>) -> Result<Self, ValueError> {
        let value: String = value.into();
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(ValueError::new(field, "must not be empty"));
        }
        let chars = trimmed.chars().count();
        if chars > MAX {
            return Err(ValueError::new(
                field,
                format!("must be at most {MAX} characters, got {chars}"),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Display for NonEmptyText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for NonEmptyText<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("text", s).map_err(serde::de::Error::custom)
    }
}

/// An email address: one `@`, a non-empty local part, a domain with a dot,
/// no whitespace, at most 254 characters. Stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValueError> {
        let value = value.trim();
        if value.len() > 254 {
            return Err(ValueError::new(field, "must be at most 254 characters"));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(ValueError::new(field, "must not contain whitespace"));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(ValueError::new(field, "must contain '@'"));
        };
        if local.is_empty() || domain.contains('@') {
            return Err(ValueError::new(
                field,
                "must have exactly one '@' after a local part",
            ));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(ValueError::new(
                field,
                "must have a domain such as example.com",
            ));
        }
        Ok(Self(value.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("email", &s).map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217 currency code: three uppercase ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Currency([u8; 3]);

impl JsonSchema for Currency {
    fn schema_name() -> String {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            string: Some(Box::new(schemars::schema::StringValidation {
                pattern: Some("^[A-Z]{3}$".into()),
                ..Default::default()
            })),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some("ISO 4217 currency code".into()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

impl Currency {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValueError> {
        let bytes = value.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(ValueError::new(
                field,
                "must be a three-letter ISO 4217 code such as EUR",
            ));
        }
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII uppercase letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("currency", &s).map_err(serde::de::Error::custom)
    }
}

/// A non-negative amount in minor units (cents) of a currency.
// Decoding refuses a negative amount, as `Money::new` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub struct Money {
    /// Amount in minor units (e.g. cents); never negative.
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(
        field: &'static str,
        amount_minor: i64,
        currency: Currency,
    ) -> Result<Self, ValueError> {
        if amount_minor < 0 {
            return Err(ValueError::new(field, "must not be negative"));
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            amount_minor: i64,
            currency: Currency,
        }
        let raw = Raw::deserialize(d)?;
        Self::new("amount_minor", raw.amount_minor, raw.currency).map_err(serde::de::Error::custom)
    }
}

/// Ticket priority, P1 (most urgent) to P4.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl TryFrom<&str> for Priority {
    type Error = ValueError;

    fn try_from(value: &str) -> Result<Self, ValueError> {
        match value {
            "P1" | "p1" => Ok(Self::P1),
            "P2" | "p2" => Ok(Self::P2),
            "P3" | "p3" => Ok(Self::P3),
            "P4" | "p4" => Ok(Self::P4),
            _ => Err(ValueError::new("priority", "must be one of P1, P2, P3, P4")),
        }
    }
}

/// A score in an inclusive range, e.g. a survey score 1..=5 or a lead
/// qualification score 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Score<const MIN: u8, const MAX: u8>(u8);

/// A customer survey answer, 1 to 5.
pub type SurveyScore = Score<1, 5>;
/// A lead qualification score, 0 to 100.
pub type LeadScore = Score<0, 100>;

impl<const MIN: u8, const MAX: u8> Score<MIN, MAX> {
    pub fn parse(field: &'static str, value: i64) -> Result<Self, ValueError> {
        if value < i64::from(MIN) || value > i64::from(MAX) {
            return Err(ValueError::new(
                field,
                format!("must be between {MIN} and {MAX}, got {value}"),
            ));
        }
        Ok(Self(value as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de, const MIN: u8, const MAX: u8> Deserialize<'de> for Score<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Self::parse("score", v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(ShortText::parse("title", "  a  ").unwrap().as_str(), "a");
        assert_eq!(
            ShortText::parse("title", "   ").unwrap_err(),
            ValueError::new("title", "must not be empty")
        );
        assert!(NonEmptyText::<3>::parse("x", "abcd").is_err());
        assert!(NonEmptyText::<3>::parse("x", "äöü").is_ok());
    }

    #[test]
    fn money_is_never_negative_however_it_is_made() {
        let eur = Currency::parse("currency", "EUR").unwrap();
        assert!(Money::new("value", -1, eur).is_err());
        let decoded: Money =
            serde_json::from_value(serde_json::json!({"amount_minor": 5, "currency": "EUR"}))
                .unwrap();
        assert_eq!(decoded, Money::new("value", 5, eur).unwrap());
        let negative = serde_json::from_value::<Money>(
            serde_json::json!({"amount_minor": -5, "currency": "EUR"}),
        )
        .unwrap_err();
        assert!(
            negative.to_string().contains("must not be negative"),
            "{negative}"
        );
    }

    #[test]
    fn emails_parse() {
        assert_eq!(
            Email::parse("email", "Ann@Example.com").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b.com.",
        ] {
            assert!(
                Email::parse("email", bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn money_and_currency() {
        let eur = Currency::parse("currency", "EUR").unwrap();
        assert_eq!(serde_json::to_string(&eur).unwrap(), "\"EUR\"");
        assert!(Currency::parse("currency", "eur").is_err());
        assert!(Money::new("value", -1, eur).is_err());
        let m = Money::new("value", 100, eur).unwrap();
        let back: Money = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn scores_are_bounded() {
        assert!(SurveyScore::parse("score", 0).is_err());
        assert!(SurveyScore::parse("score", 6).is_err());
        assert_eq!(SurveyScore::parse("score", 5).unwrap().get(), 5);
        assert!(serde_json::from_str::<SurveyScore>("9").is_err());
    }

    #[test]
    fn priorities_parse() {
        assert_eq!(Priority::try_from("P2").unwrap(), Priority::P2);
        assert!(Priority::try_from("P5").is_err());
    }
}
