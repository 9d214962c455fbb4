//! `contract.drafted` schema version 1, kept to describe and upcast events
//! stored before version 2.
//!
//! Version 1 stored the value as a decimal string in major units with the
//! currency beside it:
//!
//! ```text
//! v1: { ..., "value": "12500.50", "currency": "EUR", ... }
//! v2: { ..., "value": { "amount_minor": 1250050, "currency": "EUR" }, ... }
//! ```
//!
//! The upcaster parses the decimal exactly (no floating point) into the
//! currency's minor units (ISO 4217 exponent: 2 for EUR, 0 for JPY, 3 for
//! KWD). A value that is not a plain non-negative decimal, has more
//! significant decimals than the currency has minor units, or does not fit
//! in an `i64` is refused; every other field is carried over unchanged.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Counterparty, Party};
use crate::value::{Currency, LongText, ShortText};

/// The data of `contract.drafted` at schema version 1. Only read, never
/// written: it exists for its JSON Schema in the catalogue.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractDraftedV1 {
    pub title: ShortText,
    pub parties: Vec<Party>,
    pub counterparty: Counterparty,
    /// The value in major units as a decimal string, e.g. `"12500.50"`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))]
    pub value: String,
    /// The ISO 4217 code of the value's currency, e.g. `"EUR"`.
    #[schemars(with = "String", regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: Currency,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub body: LongText,
    pub owner: Uuid,
    pub at: DateTime<Utc>,
}

/// Turns v1 data into v2 data, or says why it cannot.
pub(super) fn upcast_drafted(data: Value) -> Result<Value, String> {
    let Value::Object(mut map) = data else {
        return Err("data is not an object".to_owned());
    };
    let value = match map.remove("value") {
        Some(Value::String(value)) => value,
        Some(_) => return Err("value is not a decimal string".to_owned()),
        None => return Err("missing field value".to_owned()),
    };
    let currency = match map.remove("currency") {
        Some(Value::String(currency)) => currency,
        Some(_) => return Err("currency is not a string".to_owned()),
        None => return Err("missing field currency".to_owned()),
    };
    let currency = Currency::parse("currency", &currency).map_err(|e| e.to_string())?;
    let amount_minor = parse_minor_units(&value, minor_unit_exponent(currency))
        .map_err(|reason| format!("value {value:?} {reason}"))?;
    map.insert(
        "value".to_owned(),
        json!({ "amount_minor": amount_minor, "currency": currency }),
    );
    Ok(Value::Object(map))
}

/// The number of decimals of a currency's minor unit (ISO 4217).
fn minor_unit_exponent(currency: Currency) -> u32 {
    match currency.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// Parses a plain decimal (`"12500"`, `"12500.5"`, `"12500.50"`) into an
/// integer count of units of `10^-exponent`, exactly.
fn parse_minor_units(text: &str, exponent: u32) -> Result<i64, String> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => {
            if fraction.is_empty() {
                return Err("has no digits after the decimal point".to_owned());
            }
            (whole, fraction)
        }
        None => (text, ""),
    };
    if whole.is_empty() {
        return Err("has no digits before the decimal point".to_owned());
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err("is not a plain non-negative decimal number".to_owned());
    }
    let exponent = usize::try_from(exponent).unwrap_or(usize::MAX);
    let (fraction, dropped) = fraction.split_at(fraction.len().min(exponent));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(format!("has more than {exponent} significant decimals"));
    }
    let padding = exponent.saturating_sub(fraction.len());
    let digits = whole
        .bytes()
        .chain(fraction.bytes())
        .chain(std::iter::repeat_n(b'0', padding));
    let mut amount: i64 = 0;
    for digit in digits {
        amount = amount
            .checked_mul(10)
            .and_then(|a| a.checked_add(i64::from(digit - b'0')))
            .ok_or_else(|| "is too large".to_owned())?;
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::contract::ContractEvent;
    use crate::event::{decode, DecodeError};

    fn currency(code: &str) -> Currency {
        Currency::parse("currency", code).unwrap()
    }

    #[test]
    fn decimals_parse_exactly_into_minor_units() {
        let cases = [
            ("12500.50", 2, 1_250_050),
            ("12500.5", 2, 1_250_050),
            ("12500", 2, 1_250_000),
            ("0", 2, 0),
            ("0.01", 2, 1),
            ("007.10", 2, 710),
            ("12500.500", 2, 1_250_050),
            ("1500", 0, 1500),
            ("1500.000", 0, 1500),
            ("1.234", 3, 1234),
            ("92233720368547758.07", 2, i64::MAX),
        ];
        for (text, exponent, expected) in cases {
            assert_eq!(
                parse_minor_units(text, exponent),
                Ok(expected),
                "{text} at exponent {exponent}"
            );
        }
    }

    #[test]
    fn malformed_decimals_are_refused() {
        for text in [
            "",
            ".",
            "1.",
            ".5",
            "-1",
            "+1",
            "1,5",
            "1 000",
            " 1",
            "1e3",
            "12.345",
            "0x10",
            "1.2.3",
            "NaN",
            "١٢",
            "92233720368547758.08",
        ] {
            assert!(
                parse_minor_units(text, 2).is_err(),
                "{text:?} should be refused"
            );
        }
        assert!(parse_minor_units("1500.5", 0).is_err());
    }

    #[test]
    fn currencies_have_their_iso_exponent() {
        assert_eq!(minor_unit_exponent(currency("EUR")), 2);
        assert_eq!(minor_unit_exponent(currency("JPY")), 0);
        assert_eq!(minor_unit_exponent(currency("KWD")), 3);
    }

    fn v1(value: Value, currency: Value) -> Value {
        let mut data = crate::contract::drafted_example(value, None);
        if let Value::Object(map) = &mut data {
            map.insert("currency".into(), currency);
        }
        data
    }

    #[test]
    fn v1_upcasts_to_money_in_minor_units() {
        let event: ContractEvent =
            decode("contract.drafted", 1, v1(json!("980000"), json!("JPY"))).unwrap();
        let ContractEvent::Drafted(drafted) = event else {
            panic!("expected a drafted event, got {event:?}");
        };
        assert_eq!(drafted.value.amount_minor, 980_000);
        assert_eq!(drafted.value.currency, currency("JPY"));
    }

    #[test]
    fn malformed_v1_is_a_decode_error() {
        let cases = [
            v1(json!("12,500.50"), json!("EUR")),
            v1(json!(12500.5), json!("EUR")),
            v1(json!("12500.505"), json!("EUR")),
            v1(json!("12500.50"), json!("eur")),
            v1(json!("12500.50"), json!(null)),
            json!("not an object"),
        ];
        for data in cases {
            let result = decode::<ContractEvent>("contract.drafted", 1, data.clone());
            assert!(
                matches!(result, Err(DecodeError::Invalid { .. })),
                "{data} gave {result:?}"
            );
        }
        let mut missing = v1(json!("1.00"), json!("EUR"));
        if let Value::Object(map) = &mut missing {
            map.remove("currency");
        }
        assert!(decode::<ContractEvent>("contract.drafted", 1, missing).is_err());
    }

    #[test]
    fn unknown_versions_are_refused() {
        for version in [0, 3] {
            let result = decode::<ContractEvent>(
                "contract.drafted",
                version,
                v1(json!("1.00"), json!("EUR")),
            );
            assert!(
                matches!(result, Err(DecodeError::UnknownVersion { version: v, .. }) if v == version),
                "version {version} gave {result:?}"
            );
        }
        let result = decode::<ContractEvent>("contract.signed", 2, json!({}));
        assert!(matches!(result, Err(DecodeError::UnknownVersion { .. })));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any amount written as a decimal in major units comes back exact.
        #[test]
        fn decimal_round_trip(amount in 0..=i64::MAX, exponent in 0u32..=4, extra_zeros in 0usize..3) {
            let divisor = 10i64.pow(exponent);
            let whole = amount / divisor;
            let fraction = amount % divisor;
            let width = usize::try_from(exponent).unwrap();
            let mut text = if exponent == 0 {
                whole.to_string()
            } else {
                format!("{whole}.{fraction:0width$}")
            };
            if extra_zeros > 0 {
                if exponent == 0 {
                    text.push('.');
                }
                text.push_str(&"0".repeat(extra_zeros));
            }
            prop_assert_eq!(parse_minor_units(&text, exponent), Ok(amount));
        }

        /// No string makes the parser panic.
        #[test]
        fn parsing_never_panics(text in "\\PC{0,24}", exponent in 0u32..=4) {
            let _ = parse_minor_units(&text, exponent);
        }
    }
}
