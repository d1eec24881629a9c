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

/// The words of a text: lower-case runs of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// A stable 64-bit hash (FNV-1a); stored band keys must not change between runs or builds.
fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// SplitMix64's finalizer: spreads a 64-bit value over all bits.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The shingle hashes of a text.
pub fn shingles(text: &str) -> HashSet<u64> {
    let words = words(text);
    if words.len() < SHINGLE {
        return words.iter().map(|w| fnv1a(w.as_bytes(), 0)).collect();
    }
    words
        .windows(SHINGLE)
        .map(|window| window.iter().fold(0u64, |acc, w| mix(acc ^ fnv1a(w.as_bytes(), 0))))
        .collect()
}

/// Hex SHA-256 of the normalized words: equal for bodies that differ only in markup, case,
/// punctuation or spacing.
pub fn fingerprint(text: &str) -> Option<String> {
    use sha2::Digest;
    let words = words(text);
    if words.is_empty() {
        return None;
    }
    let mut hasher = sha2::Sha256::new();
    for word in &words {
        hasher.update(word.as_bytes());
        hasher.update(b" ");
    }
    Some(hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// The LSH band keys of a text's MinHash signature; `None` when the text is too short.
pub fn band_keys(shingles: &HashSet<u64>) -> Option<[i64; BANDS]> {
    if shingles.len() < MIN_SHINGLES {
        return None;
    }
    let mut minimums = [u64::MAX; HASHES];
    for &shingle in shingles {
        for (i, minimum) in minimums.iter_mut().enumerate() {
            let h = mix(shingle ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if h < *minimum {
                *minimum = h;
            }
        }
    }
    let mut keys = [0i64; BANDS];
    for (band, key) in keys.iter_mut().enumerate() {
        let rows = &minimums[band * ROWS..(band + 1) * ROWS];
        let combined = rows.iter().fold(band as u64, |acc, &v| mix(acc ^ v));
        *key = combined as i64;
    }
    Some(keys)
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
