use proptest::prelude::*;
use switchboard_crypto::blind_index::{EMAIL_DOMAIN, PHONE_DOMAIN};
use switchboard_crypto::{
    DataKey, NormalizeError, blind_index, normalize_email, normalize_phone, phone_index,
};

#[test]
fn phone_numbers_normalise_to_e164() {
    for (raw, expected, why) in [
        ("+4915112345678", "+4915112345678", "already E.164"),
        ("+49 151 1234-5678", "+4915112345678", "spaces and dashes"),
        (
            "004915112345678",
            "+4915112345678",
            "00 international prefix",
        ),
        ("+1 (415) 555.0100", "+14155550100", "brackets and dots"),
        (
            "  +44 20 7946 0958\n",
            "+442079460958",
            "surrounding whitespace",
        ),
        (
            "+44\u{a0}20\u{a0}7946\u{a0}0958",
            "+442079460958",
            "no-break spaces",
        ),
    ] {
        assert_eq!(normalize_phone(raw).as_deref(), Ok(expected), "{why}");
    }
}

#[test]
fn phone_numbers_that_cannot_be_normalised_are_refused() {
    for (raw, expected, why) in [
        (
            "015112345678",
            NormalizeError::MissingCountryCode,
            "national number",
        ),
        (
            "+0151123456",
            NormalizeError::MissingCountryCode,
            "country code starting with 0",
        ),
        (
            "+49 151 CALL-ME",
            NormalizeError::InvalidCharacter,
            "letters",
        ),
        ("+1234", NormalizeError::BadLength(4), "too short"),
        (
            "+1234567890123456",
            NormalizeError::BadLength(16),
            "longer than E.164 allows",
        ),
        (
            "+٤٩١٥١١٢٣٤٥٦٧٨",
            NormalizeError::InvalidCharacter,
            "non-ASCII digits",
        ),
    ] {
        assert_eq!(normalize_phone(raw), Err(expected), "{why}");
    }
}

#[test]
fn spellings_of_one_number_share_an_index_within_a_tenant_only() {
    let tenant_a = DataKey::generate(1).unwrap();
    let tenant_b = DataKey::generate(1).unwrap();
    let a1 = phone_index(tenant_a.index_key(), "+49 151 1234-5678").unwrap();
    let a2 = phone_index(tenant_a.index_key(), "004915112345678").unwrap();
    let b = phone_index(tenant_b.index_key(), "+4915112345678").unwrap();

    assert_eq!(a1, a2);
    assert_ne!(a1, b, "tenants must not be linkable through their indexes");
    assert_eq!(a1.len(), 64);
    assert!(
        a1.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn domains_separate_indexes_of_the_same_value() {
    let key = DataKey::generate(1).unwrap();
    let value = "+4915112345678";
    assert_ne!(
        blind_index(key.index_key(), PHONE_DOMAIN, value),
        blind_index(key.index_key(), EMAIL_DOMAIN, value)
    );
    assert_ne!(
        blind_index(key.index_key(), "ab", "c"),
        blind_index(key.index_key(), "a", "bc"),
        "domain and value must not run into each other"
    );
}

#[test]
fn emails_normalise_to_lowercase() {
    assert_eq!(
        normalize_email("  Ada.Lovelace@Example.ORG ").as_deref(),
        Ok("ada.lovelace@example.org")
    );
    for bad in [
        "",
        "no-at-sign",
        "@example.org",
        "ada@",
        "a@b@c",
        "ada love@example.org",
    ] {
        assert_eq!(
            normalize_email(bad),
            Err(NormalizeError::InvalidEmail),
            "{bad}"
        );
    }
}

proptest! {
    #[test]
    fn normalising_never_panics_and_is_idempotent(raw in ".{0,40}") {
        if let Ok(e164) = normalize_phone(&raw) {
            prop_assert_eq!(normalize_phone(&e164), Ok(e164.clone()));
        }
        if let Ok(email) = normalize_email(&raw) {
            prop_assert_eq!(normalize_email(&email), Ok(email.clone()));
        }
    }

    #[test]
    fn formatted_numbers_index_like_their_e164_form(digits in "[1-9][0-9]{6,14}", seps in proptest::collection::vec(prop::sample::select(vec![" ", "-", ".", ""]), 15)) {
        let key = DataKey::generate(1).unwrap();
        let formatted: String = digits.chars().zip(seps.iter()).map(|(d, s)| format!("{d}{s}")).collect();
        prop_assert_eq!(
            phone_index(key.index_key(), &format!("+{formatted}")).unwrap(),
            phone_index(key.index_key(), &format!("00{digits}")).unwrap()
        );
    }
}
