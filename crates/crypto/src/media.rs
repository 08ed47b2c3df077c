//! Streaming encryption of media files (images, voice notes, documents) of any size, in flat
//! memory, detecting truncation, reordering, appended data and bit flips.
//!
//! # Construction
//!
//! This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
//! Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015) over
//! AES-256-GCM with a fresh key per file, the same shape as Tink's `AesGcmHkdfStreaming`:
//!
//! * **Per-file key** = HKDF-SHA256(salt = 32 random bytes from the header, input = the data
//!   key's media subkey, info = `"switchboard/media-file/v1"`). A new key per file means the
//!   nonces below can be a plain counter with no risk of reuse across files, and no limit on
//!   how many files a tenant stores under one data key.
//! * **Nonce** of chunk *i* = 7 zero bytes ‖ *i* as u32 big-endian ‖ `0x01` for the final chunk,
//!   `0x00` otherwise (96 bits, GCM's native size). The counter makes each chunk valid only at
//!   its position (reordering, dropping or duplicating a chunk fails); the final flag makes the
//!   end explicit, so cutting the file at a chunk boundary fails too, as does appending data.
//! * **Associated data** of every chunk = `"switchboard/media/v1" ‖ tenant ‖ table ‖ column ‖
//!   row id` ([`Aad`], length-prefixed) ‖ the whole header, so the header (chunk size, key
//!   version, salt) cannot be altered and a file copied to another media row fails.
//! * **Chunks** hold 64 KiB of plaintext plus a 16-byte tag: 0.02 % overhead, two buffers of
//!   64 KiB per stream in memory, and with a 32-bit counter files up to 256 TiB. Every file has
//!   at least one chunk (an empty file is one empty final chunk).
//!
//! # Layout
//!
//! ```text
//! header (45 bytes): "SBME" ‖ 0x01 format ‖ chunk size u32 BE ‖ data key version u32 BE ‖ salt (32)
//! chunks:            ciphertext ‖ tag (16), each chunk_size + 16 bytes except the last (shorter or equal)
//! ```
//!
//! # Using the output of [`decrypt_file`]
//!
//! Plaintext is written chunk by chunk as each chunk authenticates, so a failing file may
//! already have written an authentic *prefix*. Callers that serve a file must treat any error
//! as "discard everything written" (decrypt into a temporary file, or stream to the client and
//! abort the response on error) rather than as a shorter file.

use std::io::{self, Read, Write};

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::encoding::random_fill;
use crate::keys::{DataKey, KEY_LEN, NONCE_LEN, RngError, TAG_LEN};
use crate::seal::Aad;

/// Plaintext bytes per chunk written by [`encrypt_file`].
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Length of the file header.
pub const HEADER_LEN: usize = 4 + 1 + 4 + 4 + SALT_LEN;

const MAGIC: &[u8; 4] = b"SBME";
const FORMAT_V1: u8 = 0x01;
const SALT_LEN: usize = 32;
/// Chunk sizes [`decrypt_file`] accepts; bounds the memory a hostile header can ask for.
const CHUNK_SIZE_RANGE: std::ops::RangeInclusive<usize> = 4 * 1024..=4 * 1024 * 1024;

/// Why a file could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading or writing failed.
    #[error("media stream IO failed: {0}")]
    Io(#[from] io::Error),
    /// Not an encrypted media file (bad magic, short header, impossible chunk size).
    #[error("malformed encrypted media file: {0}")]
    Malformed(&'static str),
    /// A file format this build does not know.
    #[error("encrypted media file uses format {0}, which this version does not support")]
    UnsupportedFormat(u8),
    /// The file was encrypted with another data-key version than the key given.
    #[error("encrypted with data key version {sealed_with}, but version {given} was given")]
    WrongKey {
        /// Version in the header.
        sealed_with: u32,
        /// Version of the key passed in.
        given: u32,
    },
    /// Chunk `chunk` (0-based) failed authentication: altered, moved, reordered, or a wrong
    /// key/place.
    #[error("chunk {chunk} failed authentication (altered, reordered, or wrong key or place)")]
    Tampered {
        /// Index of the failing chunk.
        chunk: u64,
    },
    /// The file ends after `chunks` chunks, and the last of them is not the final chunk.
    #[error("encrypted media file is truncated after {chunks} chunk(s)")]
    Truncated {
        /// Number of complete chunks present.
        chunks: u64,
    },
    /// Data follows what was written as the final chunk.
    #[error("data follows the final chunk (chunk {chunk})")]
    TrailingData {
        /// Index of the final chunk.
        chunk: u64,
    },
    /// More than 2^32 chunks: beyond what the 32-bit counter allows.
    #[error("media file too large for the chunk counter")]
    TooLarge,
    /// No salt could be drawn.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Size of the encrypted form of a `plaintext_len`-byte file, e.g. for a `Content-Length`.
pub fn encrypted_len(plaintext_len: u64) -> u64 {
    let chunk = CHUNK_SIZE as u64;
    let chunks = plaintext_len.div_ceil(chunk).max(1);
    HEADER_LEN as u64 + chunks * TAG_LEN as u64 + plaintext_len
}

/// Encrypts everything `reader` yields into `writer` for the place `aad` (tenant, `media`
/// table, `content` column, media id). Returns the number of bytes written.
pub fn encrypt_file<R: Read, W: Write>(
    mut reader: R,
    mut writer: W,
    key: &DataKey,
    aad: &Aad<'_>,
) -> Result<u64, FileError> {
    let mut salt = [0u8; SALT_LEN];
    random_fill(&mut salt)?;
    let header = encode_header(CHUNK_SIZE as u32, key.version(), &salt);
    let stream = ChunkCipher::new(key, &salt, aad, &header);
    writer.write_all(&header)?;
    let mut written = HEADER_LEN as u64;

    // One extra byte of look-ahead tells whether a full chunk is the last one.
    let mut buf = Zeroizing::new(vec![0u8; CHUNK_SIZE + 1]);
    let mut have = 0;
    let mut index: u32 = 0;
    loop {
        have += read_full(&mut reader, &mut buf[have..])?;
        let last = have <= CHUNK_SIZE;
        let chunk = stream.encrypt(index, last, &buf[..have.min(CHUNK_SIZE)])?;
        writer.write_all(&chunk)?;
        written += chunk.len() as u64;
        if last {
            break;
        }
        buf[0] = buf[CHUNK_SIZE];
        have = 1;
        index = index.checked_add(1).ok_or(FileError::TooLarge)?;
    }
    writer.flush()?;
    Ok(written)
}

/// Decrypts a file made by [`encrypt_file`] with the same key and place. Returns the number of
/// plaintext bytes written. On error, discard what was written (see the module docs).
pub fn decrypt_file<R: Read, W: Write>(
    mut reader: R,
    mut writer: W,
    key: &DataKey,
    aad: &Aad<'_>,
) -> Result<u64, FileError> {
    let mut header = [0u8; HEADER_LEN];
    if read_full(&mut reader, &mut header)? < HEADER_LEN {
        return Err(FileError::Malformed("shorter than the header"));
    }
    let (chunk_size, key_version, salt) = decode_header(&header)?;
    if key_version != key.version() {
        return Err(FileError::WrongKey {
            sealed_with: key_version,
            given: key.version(),
        });
    }
    let stream = ChunkCipher::new(key, &salt, aad, &header);
    let sealed_chunk = chunk_size + TAG_LEN;

    let mut buf = vec![0u8; sealed_chunk + 1];
    let mut have = 0;
    let mut index: u32 = 0;
    let mut written = 0u64;
    loop {
        have += read_full(&mut reader, &mut buf[have..])?;
        let last = have <= sealed_chunk;
        let chunk = &buf[..have.min(sealed_chunk)];
        if last && chunk.len() < TAG_LEN {
            return Err(FileError::Truncated {
                chunks: u64::from(index),
            });
        }
        let plain = match stream.decrypt(index, last, chunk) {
            Some(plain) => Zeroizing::new(plain),
            // Say precisely what went wrong when we can: a valid non-final chunk at the end
            // means the rest was cut off; a valid final chunk with more after it means data
            // was appended.
            None if last && stream.decrypt(index, false, chunk).is_some() => {
                return Err(FileError::Truncated {
                    chunks: u64::from(index) + 1,
                });
            }
            None if !last && stream.decrypt(index, true, chunk).is_some() => {
                return Err(FileError::TrailingData {
                    chunk: u64::from(index),
                });
            }
            None => {
                return Err(FileError::Tampered {
                    chunk: u64::from(index),
                });
            }
        };
        writer.write_all(&plain)?;
        written += plain.len() as u64;
        if last {
            break;
        }
        buf[0] = buf[sealed_chunk];
        have = 1;
        index = index.checked_add(1).ok_or(FileError::TooLarge)?;
    }
    writer.flush()?;
    Ok(written)
}

fn encode_header(chunk_size: u32, key_version: u32, salt: &[u8; SALT_LEN]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(MAGIC);
    header[4] = FORMAT_V1;
    header[5..9].copy_from_slice(&chunk_size.to_be_bytes());
    header[9..13].copy_from_slice(&key_version.to_be_bytes());
    header[13..].copy_from_slice(salt);
    header
}

/// The data-key version named in an encrypted file's header, so the reader can pick the key
/// before calling [`decrypt_file`]. `start` is at least the first 45 bytes of the file.
pub fn key_version(start: &[u8]) -> Result<u32, FileError> {
    let header: &[u8; HEADER_LEN] = start
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FileError::Malformed("shorter than the header"))?;
    Ok(decode_header(header)?.1)
}

fn decode_header(header: &[u8; HEADER_LEN]) -> Result<(usize, u32, [u8; SALT_LEN]), FileError> {
    if &header[..4] != MAGIC {
        return Err(FileError::Malformed(
            "not an encrypted media file (bad magic)",
        ));
    }
    if header[4] != FORMAT_V1 {
        return Err(FileError::UnsupportedFormat(header[4]));
    }
    let field = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let chunk_size = usize::try_from(field(5))
        .ok()
        .filter(|size| CHUNK_SIZE_RANGE.contains(size))
        .ok_or(FileError::Malformed("chunk size out of range"))?;
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&header[13..]);
    Ok((chunk_size, field(9), salt))
}

/// AES-256-GCM under the per-file key, with STREAM nonces and the file's associated data.
struct ChunkCipher {
    cipher: Aes256Gcm,
    aad: Vec<u8>,
}

impl ChunkCipher {
    fn new(key: &DataKey, salt: &[u8; SALT_LEN], aad: &Aad<'_>, header: &[u8]) -> Self {
        let mut file_key = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(Some(salt), key.media_key())
            .expand(b"switchboard/media-file/v1", file_key.as_mut())
            .expect("32 bytes is far below HKDF-SHA256's output limit");
        ChunkCipher {
            cipher: Aes256Gcm::new((&*file_key).into()),
            aad: aad.writer(b"switchboard/media/v1").field(header).finish(),
        }
    }

    fn nonce(index: u32, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[7..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = u8::from(last);
        Nonce::from(nonce)
    }

    fn encrypt(&self, index: u32, last: bool, plain: &[u8]) -> Result<Vec<u8>, FileError> {
        self.cipher
            .encrypt(
                &Self::nonce(index, last),
                Payload {
                    msg: plain,
                    aad: &self.aad,
                },
            )
            .map_err(|_| FileError::TooLarge)
    }

    fn decrypt(&self, index: u32, last: bool, sealed: &[u8]) -> Option<Vec<u8>> {
        self.cipher
            .decrypt(
                &Self::nonce(index, last),
                Payload {
                    msg: sealed,
                    aad: &self.aad,
                },
            )
            .ok()
    }
}

/// Reads until `buf` is full or the reader is at its end; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_len_matches_the_chunking() {
        for (plain, chunks, why) in [
            (0u64, 1u64, "an empty file is one empty final chunk"),
            (1, 1, "short file"),
            (
                CHUNK_SIZE as u64,
                1,
                "exactly one chunk: the full chunk is final",
            ),
            (CHUNK_SIZE as u64 + 1, 2, "one byte over"),
        ] {
            assert_eq!(
                encrypted_len(plain),
                HEADER_LEN as u64 + chunks * 16 + plain,
                "{why}"
            );
        }
    }
}
