use proptest::prelude::*;
use switchboard_crypto::{Aad, DataKey, OpenError, Sealed, open, open_bytes, seal};

const TENANT: &str = "0190c3a2-7d4e-7b1a-9c3e-2f1d0a9b8c7d";
const ROW: &str = "0190c3a2-8000-7000-8000-000000000001";

fn body_aad() -> Aad<'static> {
    Aad::new(TENANT, "messages", "body", ROW)
}

#[test]
fn sealed_value_opens_with_the_same_key_and_place_in_both_forms() {
    let key = DataKey::generate(3).unwrap();
    let sealed = seal(&key, &body_aad(), "Hallo, ich brauche Hilfe 🙂".as_bytes()).unwrap();

    let text = sealed.to_string();
    assert!(text.starts_with("v1:3:"), "{text}");
    assert_eq!(text.split(':').count(), 4);
    assert_eq!(
        open(&key, &body_aad(), &text).unwrap(),
        "Hallo, ich brauche Hilfe 🙂".as_bytes()
    );

    let bytes = sealed.to_bytes();
    assert_eq!(bytes[0], 0x01);
    assert_eq!(
        open_bytes(&key, &body_aad(), &bytes).unwrap(),
        "Hallo, ich brauche Hilfe 🙂".as_bytes()
    );
    assert_eq!(Sealed::from_bytes(&bytes).unwrap(), sealed);
    assert_eq!(text.parse::<Sealed>().unwrap().key_version(), 3);
}

#[test]
fn empty_plaintext_is_sealed_too() {
    let key = DataKey::generate(1).unwrap();
    let text = seal(&key, &body_aad(), b"").unwrap().to_string();
    assert_eq!(open(&key, &body_aad(), &text).unwrap(), b"");
}

#[test]
fn sealing_twice_gives_different_ciphertexts() {
    let key = DataKey::generate(1).unwrap();
    let a = seal(&key, &body_aad(), b"same").unwrap().to_string();
    let b = seal(&key, &body_aad(), b"same").unwrap().to_string();
    assert_ne!(a, b, "nonces must be fresh");
}

#[test]
fn value_moved_to_another_place_fails_to_open() {
    let key = DataKey::generate(1).unwrap();
    let text = seal(&key, &body_aad(), b"secret").unwrap().to_string();
    let elsewhere = [
        (
            Aad::new(
                TENANT,
                "messages",
                "body",
                "0190c3a2-8000-7000-8000-000000000002",
            ),
            "another row",
        ),
        (
            Aad::new(TENANT, "messages", "caption", ROW),
            "another column",
        ),
        (Aad::new(TENANT, "notes", "body", ROW), "another table"),
        (
            Aad::new(
                "0190c3a2-7d4e-7b1a-9c3e-2f1d0a9b8c7e",
                "messages",
                "body",
                ROW,
            ),
            "another tenant",
        ),
        (
            Aad::new(TENANT, "messagesb", "ody", ROW),
            "fields shifted across a boundary",
        ),
    ];
    for (aad, why) in elsewhere {
        assert_eq!(open(&key, &aad, &text), Err(OpenError::Tampered), "{why}");
    }
}

#[test]
fn wrong_key_is_reported_as_such() {
    let key = DataKey::generate(1).unwrap();
    let text = seal(&key, &body_aad(), b"secret").unwrap().to_string();

    let newer = DataKey::generate(2).unwrap();
    assert_eq!(
        open(&newer, &body_aad(), &text),
        Err(OpenError::WrongKey {
            sealed_with: 1,
            given: 2
        })
    );
    // Another key that claims the same version is indistinguishable from tampering in GCM.
    let impostor = DataKey::generate(1).unwrap();
    assert_eq!(
        open(&impostor, &body_aad(), &text),
        Err(OpenError::Tampered)
    );
}

#[test]
fn relabelling_the_key_version_is_detected() {
    let v1 = DataKey::generate(1).unwrap();
    let text = seal(&v1, &body_aad(), b"secret").unwrap().to_string();
    let relabelled = text.replacen("v1:1:", "v1:2:", 1);
    let v2 = DataKey::generate(2).unwrap();
    assert_eq!(
        open(&v1, &body_aad(), &relabelled),
        Err(OpenError::WrongKey {
            sealed_with: 2,
            given: 1
        })
    );
    assert_eq!(
        open(&v2, &body_aad(), &relabelled),
        Err(OpenError::Tampered)
    );
}

#[test]
fn every_flipped_bit_in_the_binary_form_is_detected() {
    let key = DataKey::generate(1).unwrap();
    let bytes = seal(&key, &body_aad(), b"a short body").unwrap().to_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1 << bit;
            assert!(
                open_bytes(&key, &body_aad(), &tampered).is_err(),
                "byte {i} bit {bit}"
            );
        }
    }
}

#[test]
fn malformed_values_are_reported_precisely() {
    let key = DataKey::generate(1).unwrap();
    let good = seal(&key, &body_aad(), b"x").unwrap().to_string();
    let parts: Vec<&str> = good.split(':').collect();
    let cases = [
        (String::new(), "empty"),
        (
            "plain text someone stored by mistake".to_owned(),
            "not sealed",
        ),
        ("v1:".to_owned(), "prefix only"),
        (format!("{good}:more"), "extra field"),
        (good.replacen("v1:1:", "v1:01:", 1), "non-canonical version"),
        (good.replacen("v1:1:", "v1:-1:", 1), "negative version"),
        (
            good.replacen("v1:1:", "v1:99999999999:", 1),
            "version overflow",
        ),
        (format!("v1:1:{}:{}", "AAAA", parts[3]), "short nonce"),
        (
            format!("v1:1:{}:{}", parts[2], "AAAA"),
            "ciphertext shorter than a tag",
        ),
        (format!("v1:1:{}:{}", parts[2], "!!!!"), "bad base64"),
        (
            format!("v1:1:{}=:{}", parts[2], parts[3]),
            "padding is not canonical",
        ),
    ];
    for (text, why) in cases {
        assert!(
            matches!(open(&key, &body_aad(), &text), Err(OpenError::Malformed(_))),
            "{why}: {text}"
        );
    }
    assert_eq!(
        open(&key, &body_aad(), &good.replacen("v1:", "v2:", 1)),
        Err(OpenError::UnsupportedFormat("v2".into()))
    );
    assert!(matches!(
        open_bytes(&key, &body_aad(), &[]),
        Err(OpenError::Malformed(_))
    ));
    assert!(matches!(
        open_bytes(&key, &body_aad(), &[0x01, 0, 0]),
        Err(OpenError::Malformed(_))
    ));
    assert_eq!(
        open_bytes(&key, &body_aad(), &[0x02; 40]),
        Err(OpenError::UnsupportedFormat("0x02".into()))
    );
}

#[test]
fn debug_of_a_sealed_value_shows_no_ciphertext() {
    let key = DataKey::generate(1).unwrap();
    let sealed = seal(&key, &body_aad(), b"secret").unwrap();
    assert_eq!(
        format!("{sealed:?}"),
        "Sealed { key_version: 1, len: 22, .. }"
    );
}

fn key() -> &'static DataKey {
    static KEY: std::sync::OnceLock<DataKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| DataKey::generate(1).unwrap())
}

proptest! {
    #[test]
    fn open_never_panics_on_arbitrary_text(text in ".*") {
        let _ = open(key(), &body_aad(), &text);
    }

    #[test]
    fn open_never_panics_on_sealed_looking_text(text in "v[0-9]{0,2}:[0-9+-]{0,11}:[A-Za-z0-9_=+/-]{0,20}:[A-Za-z0-9_=+/-]{0,40}") {
        let _ = open(key(), &body_aad(), &text);
    }

    #[test]
    fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = open_bytes(key(), &body_aad(), &bytes);
    }

    #[test]
    fn any_plaintext_round_trips_at_any_place(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        tenant in ".{0,40}", table in "[a-z_]{1,20}", column in "[a-z_]{1,20}", row in ".{0,40}",
    ) {
        let aad = Aad::new(&tenant, &table, &column, &row);
        let text = seal(key(), &aad, &plaintext).unwrap().to_string();
        prop_assert_eq!(open(key(), &aad, &text).unwrap(), plaintext);
    }

    #[test]
    fn any_single_character_change_fails_to_open(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        position in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_:-]",
    ) {
        let text = seal(key(), &body_aad(), &plaintext).unwrap().to_string();
        let i = position.index(text.len());
        prop_assume!(text[i..=i] != replacement);
        let changed = format!("{}{}{}", &text[..i], replacement, &text[i + 1..]);
        prop_assert!(open(key(), &body_aad(), &changed).is_err(), "{} opened", changed);
    }
}
