//! Text lengths per element, computed once per page, and the node-keyed map the generic
//! extractor's hot paths use.

use std::collections::HashMap;

use ego_tree::NodeId;
use scraper::ElementRef;

/// A map keyed by tree node: node ids are small integers, so a multiplicative hash is enough and
/// far cheaper than SipHash on the hot paths of scoring.
pub(super) type IdMap<V> = HashMap<NodeId, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Default)]
pub(super) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Text lengths of every element below a root, computed once in one pass: the words of its text
/// (each counted with one space), and how much of that is inside links.
pub(super) struct TextStats {
    lengths: IdMap<(usize, usize)>,
}

impl TextStats {
    pub(super) fn new(root: ego_tree::NodeRef<'_, scraper::Node>) -> TextStats {
        let mut lengths: IdMap<(usize, usize)> = IdMap::default();
        for edge in root.traverse() {
            let ego_tree::iter::Edge::Close(node) = edge else { continue };
            let entry = match node.value() {
                scraper::Node::Text(text) => (words_len(text), 0),
                scraper::Node::Element(element) => {
                    let (text, linked) = node
                        .children()
                        .filter_map(|c| lengths.get(&c.id()))
                        .fold((0, 0), |(t, l), (ct, cl)| (t + ct, l + cl));
                    (text, if element.name() == "a" { text } else { linked })
                }
                _ => continue,
            };
            lengths.insert(node.id(), entry);
        }
        TextStats { lengths }
    }

    pub(super) fn text(&self, element: &ElementRef) -> usize {
        self.lengths.get(&element.id()).map_or(0, |(text, _)| *text)
    }

    /// Share of an element's text that is inside links.
    pub(super) fn link_density(&self, element: &ElementRef) -> f64 {
        match self.lengths.get(&element.id()) {
            Some((text, linked)) if *text > 0 => (*linked as f64 / *text as f64).min(1.0),
            _ => 0.0,
        }
    }

    /// Length of the text directly inside an element (not inside its child elements).
    pub(super) fn direct_text(&self, element: &ElementRef) -> usize {
        element
            .children()
            .filter(|c| c.value().is_text())
            .filter_map(|c| self.lengths.get(&c.id()))
            .map(|(t, _)| t)
            .sum()
    }
}

fn words_len(text: &str) -> usize {
    text.split_whitespace().map(|w| w.chars().count() + 1).sum()
}
