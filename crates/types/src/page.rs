//! Cursor pagination shared by every list: a page request (limit + opaque cursor) and a page of
//! items with the cursor of the next one. Ids are time-ordered, so the cursor is the last id seen.

use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// What a caller asks for: at most `limit` items after `after` (exclusive).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<String>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
    /// The limit actually applied: defaulted and capped.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        }
    }
}

/// A page of results. `next_cursor` is absent on the last page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only tells that more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(key) } else { None };
        Page {
            items: rows,
            next_cursor,
        }
    }
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}
