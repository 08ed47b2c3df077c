use std::io::Read;

use switchboard_crypto::media::{CHUNK_SIZE, HEADER_LEN, encrypted_len};
use switchboard_crypto::{Aad, DataKey, FileError, decrypt_file, encrypt_file};

const TENANT: &str = "0190c3a2-7d4e-7b1a-9c3e-2f1d0a9b8c7d";
const SEALED_CHUNK: usize = CHUNK_SIZE + 16;

fn media_aad(id: &str) -> Aad<'_> {
    Aad::new(TENANT, "media", "content", id)
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn encrypt(key: &DataKey, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let written = encrypt_file(plain, &mut out, key, &media_aad("m1")).unwrap();
    assert_eq!(written as usize, out.len());
    out
}

fn decrypt(key: &DataKey, sealed: &[u8]) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    decrypt_file(sealed, &mut out, key, &media_aad("m1")).map(|_| out)
}

/// Splits an encrypted file into its header and chunks.
fn chunks(sealed: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (header, body) = sealed.split_at(HEADER_LEN);
    (
        header.to_vec(),
        body.chunks(SEALED_CHUNK).map(<[u8]>::to_vec).collect(),
    )
}

fn join(header: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    chunks.iter().for_each(|c| out.extend_from_slice(c));
    out
}

#[test]
fn files_of_every_boundary_size_round_trip() {
    let key = DataKey::generate(1).unwrap();
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * CHUNK_SIZE + 5,
    ] {
        let plain = sample(len);
        let sealed = encrypt(&key, &plain);
        assert_eq!(
            sealed.len() as u64,
            encrypted_len(len as u64),
            "length for {len}"
        );
        assert_eq!(
            decrypt(&key, &sealed).unwrap(),
            plain,
            "round trip for {len}"
        );
    }
}

/// A reader that hands out a few bytes at a time, as sockets and pipes do.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_do_not_change_the_result() {
    let key = DataKey::generate(1).unwrap();
    let plain = sample(2 * CHUNK_SIZE + 100);
    let mut sealed = Vec::new();
    encrypt_file(Trickle(&plain, 0), &mut sealed, &key, &media_aad("m1")).unwrap();
    let mut out = Vec::new();
    decrypt_file(Trickle(&sealed, 3), &mut out, &key, &media_aad("m1")).unwrap();
    assert_eq!(out, plain);
}

#[test]
fn truncation_is_detected_wherever_the_file_is_cut() {
    let key = DataKey::generate(1).unwrap();
    let sealed = encrypt(&key, &sample(3 * CHUNK_SIZE + 5));
    let cases = [
        (
            HEADER_LEN + 3 * SEALED_CHUNK,
            "last chunk dropped (cut at a chunk boundary)",
        ),
        (HEADER_LEN + SEALED_CHUNK, "cut after the first chunk"),
        (HEADER_LEN + 2 * SEALED_CHUNK + 100, "cut inside a chunk"),
        (sealed.len() - 1, "last byte dropped"),
        (HEADER_LEN, "header only"),
        (HEADER_LEN + 10, "less than a tag after the header"),
    ];
    for (len, why) in cases {
        assert!(decrypt(&key, &sealed[..len]).is_err(), "{why}");
    }
    assert!(matches!(
        decrypt(&key, &sealed[..HEADER_LEN + 3 * SEALED_CHUNK]),
        Err(FileError::Truncated { chunks: 3 })
    ));
    assert!(matches!(
        decrypt(&key, &sealed[..HEADER_LEN]),
        Err(FileError::Truncated { chunks: 0 })
    ));
    assert!(matches!(
        decrypt(&key, &sealed[..HEADER_LEN - 1]),
        Err(FileError::Malformed(_))
    ));
}

#[test]
fn a_full_final_chunk_cannot_be_passed_off_as_a_shorter_file() {
    // Exactly two full chunks: cutting the second leaves a valid-looking full first chunk.
    let key = DataKey::generate(1).unwrap();
    let sealed = encrypt(&key, &sample(2 * CHUNK_SIZE));
    assert_eq!(sealed.len(), HEADER_LEN + 2 * SEALED_CHUNK);
    assert!(matches!(
        decrypt(&key, &sealed[..HEADER_LEN + SEALED_CHUNK]),
        Err(FileError::Truncated { chunks: 1 })
    ));
}

#[test]
fn reordered_dropped_or_duplicated_chunks_are_detected() {
    let key = DataKey::generate(1).unwrap();
    let (header, parts) = chunks(&encrypt(&key, &sample(3 * CHUNK_SIZE + 5)));
    assert_eq!(parts.len(), 4);
    let cases = [
        (vec![1, 0, 2, 3], 0, "first two chunks swapped"),
        (vec![0, 2, 1, 3], 1, "middle chunks swapped"),
        (vec![0, 2, 3], 1, "a middle chunk dropped"),
        (vec![0, 0, 1, 2, 3], 1, "a chunk duplicated"),
        (vec![3, 1, 2, 0], 0, "final chunk moved to the front"),
    ];
    for (order, chunk, why) in cases {
        let shuffled: Vec<Vec<u8>> = order.iter().map(|&i| parts[i].clone()).collect();
        let err = decrypt(&key, &join(&header, &shuffled)).unwrap_err();
        assert!(
            matches!(err, FileError::Tampered { chunk: c } if c == chunk),
            "{why}: {err:?}"
        );
    }
}

#[test]
fn data_appended_after_the_final_chunk_is_detected() {
    let key = DataKey::generate(1).unwrap();
    let sealed = encrypt(&key, &sample(CHUNK_SIZE + 10));
    let (header, parts) = chunks(&sealed);

    let mut appended = sealed.clone();
    appended.extend_from_slice(b"extra");
    assert!(decrypt(&key, &appended).is_err(), "bytes appended");

    // Pad the short final chunk out to full length with a copy of chunk 0 after it.
    let extended = join(
        &header,
        &[parts[0].clone(), parts[1].clone(), parts[0].clone()],
    );
    assert!(decrypt(&key, &extended).is_err(), "a chunk appended");

    let full = encrypt(&key, &sample(CHUNK_SIZE));
    let (header, parts) = chunks(&full);
    let err = decrypt(&key, &join(&header, &[parts[0].clone(), parts[0].clone()])).unwrap_err();
    assert!(
        matches!(err, FileError::TrailingData { chunk: 0 }),
        "{err:?}"
    );
}

#[test]
fn a_flipped_bit_anywhere_is_detected() {
    let key = DataKey::generate(1).unwrap();
    let sealed = encrypt(&key, &sample(2 * CHUNK_SIZE + 7));
    let positions = [
        (0, "magic"),
        (4, "format"),
        (6, "chunk size"),
        (12, "key version"),
        (20, "salt"),
        (HEADER_LEN, "first ciphertext byte"),
        (HEADER_LEN + CHUNK_SIZE + 3, "first chunk's tag"),
        (HEADER_LEN + SEALED_CHUNK + 500, "second chunk"),
        (sealed.len() - 1, "final tag"),
    ];
    for (at, why) in positions {
        let mut tampered = sealed.clone();
        tampered[at] ^= 0x10;
        assert!(decrypt(&key, &tampered).is_err(), "{why}");
    }
    let mut salt_flip = sealed.clone();
    salt_flip[20] ^= 1;
    assert!(matches!(
        decrypt(&key, &salt_flip),
        Err(FileError::Tampered { chunk: 0 })
    ));
    let mut body_flip = sealed;
    body_flip[HEADER_LEN + SEALED_CHUNK + 500] ^= 1;
    assert!(matches!(
        decrypt(&key, &body_flip),
        Err(FileError::Tampered { chunk: 1 })
    ));
}

#[test]
fn a_file_opens_only_at_its_place_and_with_its_key() {
    let key = DataKey::generate(1).unwrap();
    let sealed = encrypt(&key, b"voice note");

    let mut out = Vec::new();
    let err = decrypt_file(&sealed[..], &mut out, &key, &media_aad("m2")).unwrap_err();
    assert!(
        matches!(err, FileError::Tampered { chunk: 0 }),
        "copied to another media row: {err:?}"
    );

    let newer = DataKey::generate(2).unwrap();
    assert!(matches!(
        decrypt(&newer, &sealed),
        Err(FileError::WrongKey {
            sealed_with: 1,
            given: 2
        })
    ));
    let impostor = DataKey::generate(1).unwrap();
    assert!(matches!(
        decrypt(&impostor, &sealed),
        Err(FileError::Tampered { chunk: 0 })
    ));
}

#[test]
fn headers_that_are_not_ours_are_malformed() {
    let key = DataKey::generate(1).unwrap();
    let mut sealed = encrypt(&key, b"x");
    assert!(matches!(
        decrypt(
            &key,
            b"\x89PNG\r\n\x1a\n not encrypted at all, just a png header......"
        ),
        Err(FileError::Malformed(_))
    ));
    sealed[4] = 9;
    assert!(matches!(
        decrypt(&key, &sealed),
        Err(FileError::UnsupportedFormat(9))
    ));
    sealed[4] = 1;
    sealed[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        matches!(decrypt(&key, &sealed), Err(FileError::Malformed(_))),
        "absurd chunk size"
    );
}

#[test]
fn two_encryptions_of_one_file_differ() {
    let key = DataKey::generate(1).unwrap();
    assert_ne!(encrypt(&key, b"same"), encrypt(&key, b"same"));
}

#[test]
fn the_header_names_the_data_key_version_that_encrypted_the_file() {
    let key = DataKey::generate(7).unwrap();
    let sealed = encrypt(&key, &sample(10));
    assert_eq!(switchboard_crypto::media::key_version(&sealed).unwrap(), 7);
    assert!(switchboard_crypto::media::key_version(&sealed[..10]).is_err());
    assert!(
        switchboard_crypto::media::key_version(b"plain text, not a media file at all!!!!!!!!!!!")
            .is_err()
    );
}
