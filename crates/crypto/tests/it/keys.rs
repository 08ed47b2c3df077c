use std::io::Write as _;

use secrecy::ExposeSecret as _;
use switchboard_crypto::{
    Aad, DataKey, KeyError, MasterKey, MasterKeyring, UnwrapError, WrappedKey, open, rewrap, seal,
    unwrap, wrap,
};

const TENANT: &str = "0190c3a2-7d4e-7b1a-9c3e-2f1d0a9b8c7d";
const OTHER_TENANT: &str = "0190c3a2-7d4e-7b1a-9c3e-2f1d0a9b8c7e";

fn hex_of(key: &MasterKey) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.to_base64().expose_secret())
        .unwrap();
    hex::encode(bytes)
}

#[test]
fn master_key_parses_from_hex_and_every_base64_flavour() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let key = MasterKey::generate().unwrap();
    let raw = hex::decode(hex_of(&key)).unwrap();
    let forms = [
        ("hex", hex::encode(&raw)),
        ("HEX upper case", hex::encode_upper(&raw)),
        ("base64", STANDARD.encode(&raw)),
        ("base64 without padding", STANDARD_NO_PAD.encode(&raw)),
        ("url-safe base64", URL_SAFE.encode(&raw)),
        (
            "url-safe base64 without padding",
            URL_SAFE_NO_PAD.encode(&raw),
        ),
        (
            "with a trailing newline",
            format!("{}\n", STANDARD.encode(&raw)),
        ),
    ];
    for (why, text) in forms {
        let parsed = MasterKey::parse(&text, "test").unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(parsed.id(), key.id(), "{why}");
    }
}

#[test]
fn master_key_of_the_wrong_length_or_encoding_is_refused_without_echoing_it() {
    let hex_31_bytes = "ab".repeat(31);
    for (text, why) in [
        ("", "empty"),
        ("c2hvcnQ=", "base64 of 5 bytes"),
        (hex_31_bytes.as_str(), "hex of 31 bytes"),
        (
            "not a key at all! not a key at all! not a key at all! 123456",
            "garbage",
        ),
    ] {
        let err = MasterKey::parse(text, "SWITCHBOARD_MASTER_KEY").unwrap_err();
        assert!(matches!(err, KeyError::Encoding { .. }), "{why}: {err:?}");
        let message = err.to_string();
        assert!(
            message.contains("SWITCHBOARD_MASTER_KEY"),
            "{why}: {message}"
        );
        if !text.is_empty() {
            assert!(
                !message.contains(text),
                "{why}: the error echoes the key text: {message}"
            );
        }
    }
}

#[test]
fn debug_output_shows_the_key_id_and_never_the_key() {
    let key = MasterKey::generate().unwrap();
    let debug = format!(
        "{key:?} {:?}",
        MasterKeyring::new(MasterKey::parse(&hex_of(&key), "t").unwrap())
    );
    assert!(debug.contains(&key.id().to_string()), "{debug}");
    assert!(!debug.contains(&hex_of(&key)), "{debug}");
    assert!(!debug.contains(key.to_base64().expose_secret()), "{debug}");
    let data_key = DataKey::generate(3).unwrap();
    assert_eq!(format!("{data_key:?}"), "DataKey { version: 3, .. }");
    assert_eq!(format!("{:?}", data_key.index_key()), "IndexKey(..)");
}

#[test]
fn key_ids_are_short_stable_and_distinct() {
    let a = MasterKey::generate().unwrap();
    let b = MasterKey::generate().unwrap();
    assert_eq!(a.id().to_string().len(), 16);
    assert_ne!(a.id(), b.id());
    assert_eq!(MasterKey::parse(&hex_of(&a), "t").unwrap().id(), a.id());
    assert_eq!(
        a.id()
            .to_string()
            .parse::<switchboard_crypto::KeyId>()
            .unwrap(),
        a.id()
    );
}

#[test]
fn unset_environment_variable_is_reported_by_name() {
    let err = MasterKey::from_env_var("SWITCHBOARD_TEST_MASTER_KEY_THAT_IS_NEVER_SET").unwrap_err();
    assert!(matches!(err, KeyError::EnvNotSet { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("SWITCHBOARD_TEST_MASTER_KEY_THAT_IS_NEVER_SET")
    );
}

#[cfg(unix)]
fn key_file(dir: &tempfile::TempDir, contents: &[u8], mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.path().join(format!("master-{mode:o}.key"));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn key_file_readable_by_owner_only_loads_as_text_or_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let text = key_file(&dir, format!("{}\n", hex_of(&key)).as_bytes(), 0o600);
    assert_eq!(MasterKey::from_file(&text).unwrap().id(), key.id());
    let raw = key_file(&dir, &hex::decode(hex_of(&key)).unwrap(), 0o400);
    assert_eq!(MasterKey::from_file(&raw).unwrap().id(), key.id());
}

#[cfg(unix)]
#[test]
fn key_file_accessible_by_group_or_others_is_refused_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        let path = key_file(&dir, hex_of(&key).as_bytes(), mode);
        let err = MasterKey::from_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::Permissions { .. }),
            "mode {mode:o}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
        assert!(message.contains(&format!("{mode:04o}")), "{message}");
    }
}

#[test]
fn missing_key_file_is_an_io_error_naming_the_path() {
    let err =
        MasterKey::from_file(std::path::Path::new("/nonexistent/switchboard.key")).unwrap_err();
    assert!(matches!(err, KeyError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/switchboard.key"));
}

#[test]
fn unwrapped_data_key_opens_what_the_original_sealed() {
    let master = MasterKey::generate().unwrap();
    let data_key = DataKey::generate(1).unwrap();
    let aad = Aad::new(TENANT, "messages", "body", "row-1");
    let sealed = seal(&data_key, &aad, b"hello").unwrap().to_string();

    let stored = wrap(&master, TENANT, &data_key).unwrap().to_string();
    let loaded = unwrap(&master, TENANT, &stored.parse().unwrap()).unwrap();

    assert_eq!(loaded.version(), 1);
    assert_eq!(open(&loaded, &aad, &sealed).unwrap(), b"hello");
}

#[test]
fn wrapped_key_does_not_unwrap_for_another_tenant_version_or_master() {
    let master = MasterKey::generate().unwrap();
    let other_master = MasterKey::generate().unwrap();
    let wrapped = wrap(&master, TENANT, &DataKey::generate(1).unwrap()).unwrap();

    let err = unwrap(&master, OTHER_TENANT, &wrapped).unwrap_err();
    assert!(
        matches!(err, UnwrapError::Tampered),
        "other tenant: {err:?}"
    );

    let relabelled = wrapped
        .to_string()
        .replacen(":1:", ":2:", 1)
        .parse()
        .unwrap();
    let err = unwrap(&master, TENANT, &relabelled).unwrap_err();
    assert!(
        matches!(err, UnwrapError::Tampered),
        "other version: {err:?}"
    );

    let err = unwrap(&other_master, TENANT, &wrapped).unwrap_err();
    assert!(
        matches!(err, UnwrapError::WrongMasterKey { .. }),
        "other master: {err:?}"
    );

    let err = MasterKeyring::new(other_master)
        .unwrap(TENANT, &wrapped)
        .unwrap_err();
    assert!(
        matches!(err, UnwrapError::UnknownMasterKey(id) if id == master.id()),
        "{err:?}"
    );
}

#[test]
fn wrapped_key_string_round_trips_and_rejects_malformed_text() {
    let master = MasterKey::generate().unwrap();
    let wrapped = wrap(&master, TENANT, &DataKey::generate(7).unwrap()).unwrap();
    let text = wrapped.to_string();
    assert!(
        text.starts_with(&format!("wk1:{}:7:", master.id())),
        "{text}"
    );
    assert_eq!(text.parse::<WrappedKey>().unwrap(), wrapped);
    let json = serde_json::to_string(&wrapped).unwrap();
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<WrappedKey>(&json).unwrap(), wrapped);
    assert!(!format!("{wrapped:?}").contains(text.rsplit(':').next().unwrap()));

    let parts: Vec<&str> = text.split(':').collect();
    for (bad, why) in [
        (String::new(), "empty"),
        (text.replacen("wk1", "wk2", 1), "unknown format"),
        (format!("{text}:extra"), "extra field"),
        (parts[..4].join(":"), "missing ciphertext"),
        (text.replacen(parts[1], "XYZ", 1), "bad key id"),
        (text.replacen(":7:", ":07:", 1), "non-canonical version"),
        (text.replacen(parts[3], "AAAA", 1), "short nonce"),
        (
            format!("{}:{}", parts[..4].join(":"), "AAAA"),
            "short ciphertext",
        ),
    ] {
        assert!(
            matches!(bad.parse::<WrappedKey>(), Err(UnwrapError::Malformed(_))),
            "{why}: {bad}"
        );
    }
}

#[test]
fn rotation_rewraps_under_the_new_key_while_both_keys_unwrap() {
    // Arrange: a tenant whose data key is wrapped under the old master key.
    let old = MasterKey::generate().unwrap();
    let old_copy = MasterKey::parse(&hex_of(&old), "t").unwrap();
    let new = MasterKey::generate().unwrap();
    let new_id = new.id();
    let data_key = DataKey::generate(1).unwrap();
    let aad = Aad::new(TENANT, "contacts", "name", "row-9");
    let sealed = seal(&data_key, &aad, b"Ada Lovelace").unwrap().to_string();
    let stored = MasterKeyring::new(old).wrap(TENANT, &data_key).unwrap();

    // Act: nodes run with current = new and the old key decrypt-only; `keys rotate` runs.
    let ring = MasterKeyring::new(new).with_decrypt_only(old_copy);
    assert!(ring.needs_rewrap(&stored));
    let during = ring.unwrap(TENANT, &stored).unwrap();
    let rotated = ring
        .rewrap(TENANT, &stored)
        .unwrap()
        .expect("old key needs a rewrap");

    // Assert: the data key is the same, the wrapping is new, and a second pass is a no-op.
    assert_eq!(open(&during, &aad, &sealed).unwrap(), b"Ada Lovelace");
    assert_eq!(rotated.master_key_id(), new_id);
    assert!(!ring.needs_rewrap(&rotated));
    assert!(ring.rewrap(TENANT, &rotated).unwrap().is_none());
    let after = ring.unwrap(TENANT, &rotated).unwrap();
    assert_eq!(open(&after, &aad, &sealed).unwrap(), b"Ada Lovelace");
}

#[test]
fn rewrap_moves_a_key_from_one_master_to_another() {
    let old = MasterKey::generate().unwrap();
    let new = MasterKey::generate().unwrap();
    let data_key = DataKey::generate(2).unwrap();
    let aad = Aad::new(TENANT, "channels", "credentials", "ch-1");
    let sealed = seal(&data_key, &aad, b"{\"token\":\"x\"}")
        .unwrap()
        .to_string();
    let wrapped = wrap(&old, TENANT, &data_key).unwrap();

    let moved = rewrap(&old, &new, TENANT, &wrapped).unwrap();

    assert_eq!(moved.data_key_version(), 2);
    assert!(matches!(
        unwrap(&old, TENANT, &moved),
        Err(UnwrapError::WrongMasterKey { .. })
    ));
    assert_eq!(
        open(&unwrap(&new, TENANT, &moved).unwrap(), &aad, &sealed).unwrap(),
        b"{\"token\":\"x\"}"
    );
    assert!(matches!(
        rewrap(&new, &old, OTHER_TENANT, &moved),
        Err(UnwrapError::Tampered)
    ));
}
