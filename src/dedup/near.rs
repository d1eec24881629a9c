//! Content identity: an exact fingerprint of the normalized body text, and MinHash signatures
//! with locality-sensitive hashing (LSH) bands for near-duplicates — the same story republished
//! with a new headline, an added sentence or a different lead.
//!
//! Text is normalized to lower-case words (letters and digits; numbers are kept, so two daily
//! reports that differ in their figures stay apart) and cut into overlapping word 3-grams
//! ("shingles"). Two bodies are near-duplicates when their shingle sets are similar enough
//! ([`similarity`]). To find candidates without scanning, each signature is split into
//! [`BANDS`] bands of [`ROWS`] values; items sharing any band are candidates (the store indexes
//! band keys), and only candidates are compared exactly.

use std::collections::HashSet;

/// Words per shingle.
const SHINGLE: usize = 3;
/// LSH bands and values per band: with 20 × 3, a pair with Jaccard similarity 0.5 becomes a
/// candidate with probability 1 − (1 − 0.5³)²⁰ ≈ 0.93, one with 0.7 almost surely (0.9996),
/// and an unrelated pair (similarity ≈ 0.02) about once in 6,000.
pub const BANDS: usize = 20;
pub const ROWS: usize = 3;
const HASHES: usize = BANDS * ROWS;
/// Bodies with fewer shingles than this are too short to call near-duplicates (a one-line
/// "air-raid alert" notice matches every other one).
pub const MIN_SHINGLES: usize = 20;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// The words of a text — lower-case runs of letters and digits — each as a stable 64-bit hash
/// (FNV-1a of its UTF-8; stored band keys must not change between runs or builds). One pass,
/// no allocation per word.
fn word_hashes(text: &str) -> Vec<u64> {
    let mut words = Vec::with_capacity(text.len() / 6);
    let mut hash = FNV_OFFSET;
    let mut in_word = false;
    let feed = |hash: &mut u64, byte: u8| {
        *hash ^= u64::from(byte);
        *hash = hash.wrapping_mul(FNV_PRIME);
    };
    for c in text.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                feed(&mut hash, c.to_ascii_lowercase() as u8);
                in_word = true;
                continue;
            }
        } else if let Some(lower) = cyrillic_lower(c) {
            // The common non-ASCII case (Ukrainian, Russian) without Unicode table lookups.
            let mut buffer = [0u8; 4];
            for &byte in lower.encode_utf8(&mut buffer).as_bytes() {
                feed(&mut hash, byte);
            }
            in_word = true;
            continue;
        } else if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                let mut buffer = [0u8; 4];
                for &byte in lower.encode_utf8(&mut buffer).as_bytes() {
                    feed(&mut hash, byte);
                }
            }
            in_word = true;
            continue;
        }
        if in_word {
            words.push(hash);
            hash = FNV_OFFSET;
            in_word = false;
        }
    }
    if in_word {
        words.push(hash);
    }
    words
}

/// A basic Cyrillic letter (U+0400–U+045F) in lower case; `None` for anything else.
fn cyrillic_lower(c: char) -> Option<char> {
    let code = c as u32;
    let lower = match code {
        0x0400..=0x040F => code + 0x50,
        0x0410..=0x042F => code + 0x20,
        0x0430..=0x045F => code,
        _ => return None,
    };
    char::from_u32(lower)
}

/// SplitMix64's finalizer: spreads a 64-bit value over all bits.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The shingle hashes of a text.
pub fn shingles(text: &str) -> HashSet<u64> {
    let words = word_hashes(text);
    if words.len() < SHINGLE {
        return words.into_iter().collect();
    }
    words.windows(SHINGLE).map(|window| window.iter().fold(0u64, |acc, &w| mix(acc ^ w))).collect()
}

/// A 64-bit hash of the sequence of normalized words: equal for bodies that differ only in
/// markup, case, punctuation or spacing (two different bodies share one with a chance of about
/// one in 10¹⁹).
pub fn fingerprint(text: &str) -> Option<i64> {
    let words = word_hashes(text);
    if words.is_empty() {
        return None;
    }
    Some(words.iter().fold(words.len() as u64, |acc, &w| mix(acc.rotate_left(5) ^ w)) as i64)
}

/// What the store needs to find a body's duplicates: its fingerprint and LSH band keys
/// (`None` for bodies too short to compare). Computed before the write, off the writer thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub fingerprint: i64,
    pub bands: [u32; BANDS],
}

impl Signature {
    pub fn of(text: &str) -> Option<Signature> {
        let bands = band_keys(&shingles(text))?;
        Some(Signature { fingerprint: fingerprint(text)?, bands })
    }
}

/// The LSH band keys of a text's MinHash signature; `None` when the text is too short.
///
/// The [`HASHES`] hash functions are `h1 + i·h2` of two independent hashes of each shingle
/// (Kirsch–Mitzenmacher double hashing), which behaves like independent permutations for
/// MinHash at a fraction of the cost of mixing each one.
pub fn band_keys(shingles: &HashSet<u64>) -> Option<[u32; BANDS]> {
    if shingles.len() < MIN_SHINGLES {
        return None;
    }
    let mut minimums = [u64::MAX; HASHES];
    for &shingle in shingles {
        let h1 = mix(shingle);
        let h2 = mix(shingle ^ 0x9e37_79b9_7f4a_7c15) | 1;
        let mut h = h1;
        for minimum in minimums.iter_mut() {
            h = h.wrapping_add(h2);
            if h < *minimum {
                *minimum = h;
            }
        }
    }
    let mut keys = [0u32; BANDS];
    for (band, key) in keys.iter_mut().enumerate() {
        let rows = &minimums[band * ROWS..(band + 1) * ROWS];
        // 32 bits per key: two unrelated bodies share one by chance once in 4 billion, and
        // candidates are compared exactly anyway.
        *key = (rows.iter().fold(band as u64, |acc, &v| mix(acc ^ v)) >> 32) as u32;
    }
    Some(keys)
}

/// Band keys as stored with an item (little-endian `u32`s).
pub fn bands_to_bytes(bands: &[u32; BANDS]) -> Vec<u8> {
    bands.iter().flat_map(|b| b.to_le_bytes()).collect()
}

/// Band keys read back; `None` for a blob of the wrong size.
pub fn bands_from_bytes(bytes: &[u8]) -> Option<[u32; BANDS]> {
    if bytes.len() != BANDS * 4 {
        return None;
    }
    let mut bands = [0u32; BANDS];
    for (band, chunk) in bands.iter_mut().zip(bytes.chunks_exact(4)) {
        *band = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Some(bands)
}

/// How alike two shingle sets are: the Jaccard similarity |A ∩ B| / |A ∪ B|.
pub fn similarity(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let common = small.iter().filter(|s| large.contains(s)).count();
    common as f64 / (a.len() + b.len() - common) as f64
}

/// Whether two bodies are the same story as the store decides it: they share an LSH band (so
/// the lookup finds one from the other) and their similarity reaches `threshold` — or their
/// fingerprints are equal.
pub fn same_story(a: &str, b: &str, threshold: f64) -> bool {
    let (sa, sb) = (shingles(a), shingles(b));
    let (Some(ka), Some(kb)) = (band_keys(&sa), band_keys(&sb)) else { return false };
    fingerprint(a) == fingerprint(b)
        || (ka.iter().zip(kb.iter()).any(|(x, y)| x == y) && similarity(&sa, &sb) >= threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORY: &str = "Russian forces attacked the Kharkiv region overnight with drones and missiles, \
        damaging a power substation and several residential buildings, the regional governor said on \
        Tuesday. Three people were injured, including a child, and emergency crews worked through the \
        night to restore electricity to about twelve thousand households.";

    #[test]
    fn fingerprint_ignores_markup_case_and_spacing() {
        let html_text = STORY.replace("Russian", "RUSSIAN").replace(", ", " ,  ");
        assert_eq!(fingerprint(STORY), fingerprint(&html_text));
        assert_ne!(fingerprint(STORY), fingerprint(&STORY.replace("Three", "Four")));
        assert_eq!(fingerprint(" \n"), None);
    }

    #[test]
    fn an_added_sentence_keeps_the_bands_and_similarity_high() {
        let a = shingles(STORY);
        let b = shingles(&format!("{STORY} Air defence shot down most of the drones, the military said."));
        assert!(similarity(&a, &b) > 0.7, "{}", similarity(&a, &b));
        let (ka, kb) = (band_keys(&a).unwrap(), band_keys(&b).unwrap());
        assert!(ka.iter().zip(kb.iter()).any(|(x, y)| x == y), "shares a band");
        assert_eq!(bands_from_bytes(&bands_to_bytes(&ka)), Some(ka));
        assert_eq!(bands_from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn cyrillic_fast_path_matches_unicode_lowercase() {
        for code in 0x0400..=0x045F {
            let c = char::from_u32(code).unwrap();
            assert_eq!(
                cyrillic_lower(c).map(String::from),
                Some(c.to_lowercase().collect::<String>()),
                "{c}"
            );
        }
        assert_eq!(fingerprint("ЇЖАК Ґанок"), fingerprint("їжак ґанок"));
    }

    #[test]
    fn different_figures_and_short_texts() {
        let a = shingles(STORY);
        let other = shingles(
            "The city council approved the budget for next year on Tuesday, raising spending on schools \
             and hospitals while cutting the cost of public transport for pensioners and students alike, \
             the mayor said after a long session.",
        );
        assert!(similarity(&a, &other) < 0.05);
        assert_eq!(band_keys(&shingles("Air-raid alert in Kyiv region.")), None);
    }
}
