//! The near-duplicate lookup index: LSH band key → the newest item with that key, for the items
//! first seen inside the dedup window, kept in memory by the store's writer.
//!
//! A lookup probes one hash map per band of the new body ([`near::BANDS`] probes), never the
//! window. Each key remembers only its newest item: the items of one story share their cluster's
//! entry, so any of them leads to it. Items leave the index as they age out of the window; the
//! store builds the index from the `bands` it keeps with each item at its first write, and adds
//! the items other nodes stored before each write that stores items.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::near::BANDS;

/// Hashes band keys, which are hashes already: one multiply spreads a key over the table's bits
/// (SipHash, the default, would hash it again).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, key: u32) {
        self.0 = u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// One indexed item.
struct Slot {
    item_id: i64,
    first_seen: i64,
    bands: [u32; BANDS],
}

/// The index; see the module documentation.
#[derive(Default)]
pub struct BandIndex {
    /// Band key → sequence number of the newest item with it.
    keys: HashMap<u32, u64, BuildHasherDefault<KeyHasher>>,
    /// Indexed items, oldest first; `slots[i]` has sequence number `first + i`.
    slots: VecDeque<Slot>,
    first: u64,
    /// The highest item id the store has looked at, indexed or not.
    newest_id: i64,
}

impl BandIndex {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The highest item id the store has looked at (0 before the first).
    pub fn newest_id(&self) -> i64 {
        self.newest_id
    }

    /// The store has looked at the items up to `item_id` (stored or read, with bands or not).
    pub fn looked_at(&mut self, item_id: i64) {
        self.newest_id = self.newest_id.max(item_id);
    }

    /// Adds an item (items arrive in `first_seen` order).
    pub fn insert(&mut self, item_id: i64, first_seen: i64, bands: [u32; BANDS]) {
        self.newest_id = self.newest_id.max(item_id);
        let sequence = self.first + self.slots.len() as u64;
        for key in bands {
            self.keys.insert(key, sequence);
        }
        self.slots.push_back(Slot { item_id, first_seen, bands });
    }

    /// Items sharing a band with `bands`, without repeats.
    pub fn candidates(&self, bands: &[u32; BANDS]) -> Vec<i64> {
        let mut found: Vec<i64> = Vec::new();
        for key in bands {
            let Some(&sequence) = self.keys.get(key) else { continue };
            let Some(slot) = sequence.checked_sub(self.first).and_then(|i| self.slots.get(i as usize)) else {
                continue;
            };
            if !found.contains(&slot.item_id) {
                found.push(slot.item_id);
            }
        }
        found
    }

    /// Drops the items first seen before `since`, and their keys unless a newer item took them.
    pub fn expire(&mut self, since: i64) {
        while self.slots.front().is_some_and(|slot| slot.first_seen < since) {
            if let Some(slot) = self.slots.pop_front() {
                for key in slot.bands {
                    if self.keys.get(&key) == Some(&self.first) {
                        self.keys.remove(&key);
                    }
                }
            }
            self.first += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bands(seed: u32) -> [u32; BANDS] {
        std::array::from_fn(|i| seed * 100 + i as u32)
    }

    #[test]
    fn finds_sharing_items_and_forgets_expired_ones() {
        let mut index = BandIndex::default();
        index.insert(1, 100, bands(1));
        let mut shares = bands(2);
        shares[5] = bands(1)[5];
        index.insert(2, 200, shares);
        index.insert(3, 300, bands(3));
        // Key 105 now leads to item 2 (the newest with it); item 1 is still reachable by others.
        let mut found = index.candidates(&bands(1));
        found.sort();
        assert_eq!(found, vec![1, 2]);
        assert_eq!(index.candidates(&bands(9)), Vec::<i64>::new());
        index.expire(150);
        assert_eq!(index.len(), 2);
        assert_eq!(index.candidates(&bands(1)), vec![2], "item 1 aged out; 105 still leads to 2");
        index.expire(1_000);
        assert!(index.is_empty() && index.keys.is_empty());
    }
}
