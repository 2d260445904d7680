//! A bounded map of answers with the time each was fetched; the oldest insertions go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// One cached answer: the value, or `None` for an id the directory does not know.
pub struct Entry<T> {
    pub value: Option<Arc<T>>,
    pub fetched_at: Instant,
    generation: u64,
}

pub struct Cache<T> {
    entries: HashMap<uuid::Uuid, Entry<T>>,
    /// Insertion order, with the generation each insertion gave its entry: an id inserted
    /// again has a newer generation, so its older place in the queue evicts nothing.
    order: VecDeque<(uuid::Uuid, u64)>,
    capacity: usize,
    next_generation: u64,
}

impl<T> Cache<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            next_generation: 0,
        }
    }

    pub fn get(&self, id: &uuid::Uuid) -> Option<&Entry<T>> {
        self.entries.get(id)
    }

    pub fn insert(&mut self, id: uuid::Uuid, value: Option<Arc<T>>, fetched_at: Instant) {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.entries.insert(
            id,
            Entry {
                value,
                fetched_at,
                generation,
            },
        );
        self.order.push_back((id, generation));
        while self.entries.len() > self.capacity {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&old)
                .is_some_and(|e| e.generation == generation)
            {
                self.entries.remove(&old);
            }
        }
        // Queue places of re-inserted ids accumulate; drop them once they outnumber entries.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.order.retain(|(id, generation)| {
                entries.get(id).is_some_and(|e| e.generation == *generation)
            });
        }
    }

    pub fn remove(&mut self, id: &uuid::Uuid) {
        self.entries.remove(id);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_insertion_goes_first_and_reinsertion_renews() {
        let now = Instant::now();
        let mut cache: Cache<u32> = Cache::new(2);
        let [a, b, c] = [1u128, 2, 3].map(uuid::Uuid::from_u128);
        cache.insert(a, Some(Arc::new(1)), now);
        cache.insert(b, Some(Arc::new(2)), now);
        cache.insert(a, Some(Arc::new(11)), now);
        cache.insert(c, None, now);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&b).is_none(), "b was the oldest");
        assert_eq!(cache.get(&a).and_then(|e| e.value.as_deref()), Some(&11));
        assert!(cache.get(&c).is_some_and(|e| e.value.is_none()));
    }
}
