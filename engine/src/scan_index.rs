//! The data of a scan index, built once at bind time from a static list:
//! per dimension, the key texts the elements name; per bucket (a
//! combination of key ids), the elements' intervals as sorted elementary
//! segments, each with the elements covering it in list order. It answers
//! "which elements cover this instant for these key ids" and knows nothing
//! of expressions or evaluation: `index.rs` decides which scans use one,
//! and the evaluator (`eval.rs`) looks requests up in it.

use crate::value::Value;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// At most this many membership dimensions are indexed (2^4 buckets per lookup).
pub(crate) const MAX_DIMS: usize = 4;
/// Dense bucket tables larger than this fall back to a plain scan.
const MAX_BUCKETS: usize = 1 << 22;
/// Segment cover lists larger than this (heavily overlapping intervals) fall back too.
const MAX_COVER: usize = 1 << 23;
/// Merged tables (see [`Layout`]) up to this many intervals in all.
const MAX_MERGED_INTERVALS: usize = 1 << 22;

#[derive(Debug)]
pub struct ScanIndex {
    items: Arc<[Value]>,
    dims: Vec<DimIds>,
    /// Mixed-radix number -> position in `segments`, or `u32::MAX`.
    table: Vec<u32>,
    segments: Vec<Segments>,
    /// `Merged`: the table is indexed by the request's key ids (0 for a key no
    /// element names) and each entry already holds the union of the buckets
    /// that match it: one binary search per lookup. `PerBucket` (when merging
    /// would take too much memory): indexed by bucket, and a lookup merges
    /// the key's bucket with the wildcard bucket in each dimension.
    layout: Layout,
    /// `[from, to)` in which recurring elements were expanded; `None` when
    /// the index holds only one-off intervals and is valid at every instant.
    horizon: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    Merged,
    PerBucket,
}

#[derive(Debug)]
struct DimIds {
    wildcard: bool,
    /// Key text -> id (ids start at 1; 0 is the wildcard).
    ids: FxHashMap<Arc<str>, u32>,
}

/// Elementary segments `[bounds[k], bounds[k+1])` with the elements covering each.
#[derive(Debug, Default)]
struct Segments {
    bounds: Vec<i64>,
    offsets: Vec<u32>,
    cover: Vec<u32>,
    /// The segment found by the last lookup: decisions come in bursts at one
    /// instant (a plan routes every owner and provider at the same `now`), so
    /// checking it first usually skips the binary search. Shared between
    /// threads, hence atomic; a stale hint only costs the search.
    hint: AtomicU32,
}

/// Which fields of an element bound its interval(s).
pub(crate) enum Interval {
    /// `w.start <= t < w.end` and the inclusive/exclusive variants.
    Fields { start: u32, start_inclusive: bool, end: u32, end_inclusive: bool },
    /// `active(w, t)`: optional start/end fields and an optional recurrence field.
    Active { start: Option<u32>, end: Option<u32>, recurrence: Option<u32> },
    /// No time condition (e.g. already decided at bind time for a pinned
    /// clock): every element is in one segment, indexed by its keys only.
    Always,
}

/// The elements covering an instant, as positions in the list, ascending.
// Returned by value once per lookup, straight into the evaluator's loop:
// boxing the larger variant would allocate on the hot path.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Covering<'a> {
    /// From a merged table: one list.
    List(&'a [u32]),
    /// Per bucket: the key's bucket and/or the wildcard bucket in each
    /// dimension, merged as they are read.
    Buckets(Merge<'a>),
}

/// Merges sorted element lists into one ascending stream (no allocation).
pub(crate) struct Merge<'a> {
    lists: [&'a [u32]; 1 << MAX_DIMS],
    len: usize,
}

impl Iterator for Merge<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        let mut best: Option<usize> = None;
        for i in 0..self.len {
            if let Some(&head) = self.lists[i].first() {
                if best.is_none_or(|b| head < self.lists[b][0]) {
                    best = Some(i);
                }
            }
        }
        let b = best?;
        let head = self.lists[b][0];
        self.lists[b] = &self.lists[b][1..];
        Some(head)
    }
}

impl Segments {
    fn at(&self, t: i64) -> &[u32] {
        let hint = self.hint.load(Relaxed) as usize;
        let k = match (self.bounds.get(hint), self.bounds.get(hint + 1)) {
            (Some(&lo), Some(&hi)) if lo <= t && t < hi => hint,
            _ => {
                let k = self.bounds.partition_point(|&b| b <= t);
                if k == 0 || k >= self.bounds.len() {
                    return &[];
                }
                self.hint.store(k as u32 - 1, Relaxed);
                k - 1
            }
        };
        &self.cover[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }

    fn build(intervals: &[(i64, i64, u32)]) -> Option<Segments> {
        let mut bounds: Vec<i64> = intervals.iter().flat_map(|&(lo, hi, _)| [lo, hi]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut starts: Vec<&(i64, i64, u32)> = intervals.iter().collect();
        starts.sort_by_key(|iv| iv.0);
        let mut ends: Vec<&(i64, i64, u32)> = intervals.iter().collect();
        ends.sort_by_key(|iv| iv.1);
        let (mut si, mut ei) = (0, 0);
        // Open intervals per element: a recurring window's occurrences may
        // overlap (a 03:00-02:15 rule across a clock change), and the element
        // stays covered until the last of them ends. Every start at or
        // before a bound is counted before any end, so an interval that
        // both starts and ends by the bound nets to nothing.
        let mut active: BTreeMap<u32, u32> = BTreeMap::new();
        let mut offsets = Vec::with_capacity(bounds.len());
        let mut cover = Vec::new();
        for &b in bounds.iter().take(bounds.len().saturating_sub(1)) {
            while si < starts.len() && starts[si].0 <= b {
                *active.entry(starts[si].2).or_default() += 1;
                si += 1;
            }
            while ei < ends.len() && ends[ei].1 <= b {
                if let std::collections::btree_map::Entry::Occupied(mut open) = active.entry(ends[ei].2) {
                    *open.get_mut() -= 1;
                    if *open.get() == 0 {
                        open.remove();
                    }
                }
                ei += 1;
            }
            offsets.push(cover.len() as u32);
            cover.extend(active.keys().copied());
            if cover.len() > MAX_COVER {
                return None;
            }
        }
        offsets.push(cover.len() as u32);
        Some(Segments { bounds, offsets, cover, hint: AtomicU32::new(0) })
    }
}

impl ScanIndex {
    /// Indexes `items` by `interval` and by one list field per dimension
    /// (`fields`: the field, and whether an empty list matches every key),
    /// expanding recurring windows within `horizon`. `None` when the data is
    /// not as expected or the index would be too large: the scan stays a scan.
    pub(crate) fn build(items: &Arc<[Value]>, interval: &Interval, fields: &[(u32, bool)], horizon: (i64, i64)) -> Option<ScanIndex> {
        let mut dims: Vec<DimIds> = fields.iter().map(|(_, wildcard)| DimIds { wildcard: *wildcard, ids: FxHashMap::default() }).collect();
        // First pass: intervals and dimension ids, or give up on unexpected data.
        // Per element: its intervals, its position, and its key ids per dimension.
        struct Entry {
            intervals: Vec<(i64, i64)>,
            item: u32,
            keys: Vec<Vec<u32>>,
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut recurring = false;
        for (i, item) in items.iter().enumerate() {
            let Value::Record(r) = item else { return None };
            let field = |f: u32| r.values.get(f as usize);
            let intervals = match *interval {
                Interval::Fields { start, start_inclusive, end, end_inclusive } => {
                    let (Some(Value::Time(start)), Some(Value::Time(end))) = (field(start), field(end)) else {
                        return None;
                    };
                    let lo = if start_inclusive { *start } else { start.checked_add(1)? };
                    let hi = if end_inclusive { end.checked_add(1)? } else { *end };
                    vec![(lo, hi)]
                }
                Interval::Always => vec![(i64::MIN, i64::MAX)],
                Interval::Active { start, end, recurrence } => {
                    let time = |f: Option<u32>| match f.and_then(field) {
                        Some(Value::Time(t)) => Some(*t),
                        _ => None,
                    };
                    let (lo, hi) = (time(start), time(end));
                    match recurrence.and_then(field) {
                        Some(Value::Recurrence(rule)) => {
                            recurring = true;
                            let from = lo.map_or(horizon.0, |lo| lo.max(horizon.0));
                            let to = hi.map_or(horizon.1, |hi| hi.min(horizon.1));
                            if from < to {
                                rule.occurrences(from, to)
                            } else {
                                Vec::new()
                            }
                        }
                        _ => match (lo, hi) {
                            (Some(lo), Some(hi)) => vec![(lo, hi)],
                            _ => Vec::new(),
                        },
                    }
                }
            };
            let intervals: Vec<(i64, i64)> = intervals.into_iter().filter(|(lo, hi)| lo < hi).collect();
            if intervals.is_empty() {
                continue;
            }
            let mut keys_per_dim = Vec::with_capacity(dims.len());
            for (d, (field, wildcard)) in fields.iter().enumerate() {
                let Some(Value::List(keys)) = r.values.get(*field as usize) else {
                    return None;
                };
                let mut ids = Vec::new();
                for k in keys.iter() {
                    let Value::Text(k) = k else { return None };
                    let next = dims[d].ids.len() as u32 + 1;
                    ids.push(*dims[d].ids.entry(k.clone()).or_insert(next));
                }
                if ids.is_empty() && *wildcard {
                    ids.push(0);
                }
                ids.sort_unstable();
                ids.dedup();
                keys_per_dim.push(ids);
            }
            entries.push(Entry { intervals, item: i as u32, keys: keys_per_dim });
        }
        let radix: Vec<usize> = dims.iter().map(|d| d.ids.len() + 1).collect();
        let total = radix.iter().try_fold(1usize, |acc, r| acc.checked_mul(*r)).filter(|t| *t <= MAX_BUCKETS)?;
        let mut per_bucket: FxHashMap<usize, Vec<(i64, i64, u32)>> = FxHashMap::default();
        for Entry { intervals, item, keys } in &entries {
            for bucket in combos(keys, &radix) {
                per_bucket.entry(bucket).or_default().extend(intervals.iter().map(|&(lo, hi)| (lo, hi, *item)));
            }
        }
        let mut index = ScanIndex {
            items: items.clone(),
            dims,
            table: vec![u32::MAX; total],
            segments: Vec::new(),
            layout: Layout::Merged,
            horizon: recurring.then_some(horizon),
        };
        if !index.build_merged(&per_bucket, total) {
            index.table = vec![u32::MAX; total];
            index.segments.clear();
            index.layout = Layout::PerBucket;
            let mut sorted: Vec<_> = per_bucket.into_iter().collect();
            sorted.sort_by_key(|(b, _)| *b);
            for (bucket, intervals) in sorted {
                index.table[bucket] = index.segments.len() as u32;
                index.segments.push(Segments::build(&intervals)?);
            }
        }
        for d in &mut index.dims {
            d.ids.shrink_to_fit();
        }
        Some(index)
    }

    /// Where recurring elements were expanded (`[from, to)`); `None` when the
    /// index holds only one-off intervals and is valid at every instant.
    #[inline]
    pub(crate) fn horizon(&self) -> Option<(i64, i64)> {
        self.horizon
    }

    /// Every element, in list order.
    pub(crate) fn items(&self) -> &[Value] {
        &self.items
    }

    /// The element at a position that [`ScanIndex::covering`] gave.
    #[inline]
    pub(crate) fn item(&self, position: u32) -> &Value {
        &self.items[position as usize]
    }

    /// The id of a request's key in dimension `dim`: 1.. for keys some
    /// element names, 0 for others.
    #[inline]
    pub(crate) fn key_id(&self, dim: usize, key: &str) -> u32 {
        self.dims[dim].ids.get(key).copied().unwrap_or(0)
    }

    /// The texts that dimension `dim`'s key is compared with (its buckets).
    pub(crate) fn dimension_texts(&self, dim: usize) -> impl Iterator<Item = &Arc<str>> {
        self.dims.get(dim).into_iter().flat_map(|d| d.ids.keys())
    }

    /// The elements covering `now` for a request with these key ids (one per dimension).
    #[inline]
    pub(crate) fn covering(&self, ids: &[u32], now: i64) -> Covering<'_> {
        if self.layout == Layout::Merged {
            let covering = match self.table.get(self.merged_code(ids)) {
                Some(&pos) if pos != u32::MAX => self.segments[pos as usize].at(now),
                _ => &[],
            };
            return Covering::List(covering);
        }
        let mut lists: [&[u32]; 1 << MAX_DIMS] = [&[]; 1 << MAX_DIMS];
        let mut n_lists = 0;
        for bucket in self.candidate_buckets(ids) {
            let pos = self.table.get(bucket).copied().unwrap_or(u32::MAX);
            if pos != u32::MAX {
                let covering = self.segments[pos as usize].at(now);
                if !covering.is_empty() {
                    lists[n_lists] = covering;
                    n_lists += 1;
                }
            }
        }
        Covering::Buckets(Merge { lists, len: n_lists })
    }

    /// Adds to `out` the instants at which [`ScanIndex::covering`] can change
    /// for these key ids: the bounds of the segments they select.
    pub(crate) fn segment_bounds(&self, ids: &[u32], out: &mut Vec<i64>) {
        let mut add = |position: u32| {
            if let Some(segments) = self.segments.get(position as usize) {
                out.extend_from_slice(&segments.bounds);
            }
        };
        if self.layout == Layout::Merged {
            self.table.get(self.merged_code(ids)).into_iter().for_each(|&position| add(position));
        } else {
            for bucket in self.candidate_buckets(ids) {
                self.table.get(bucket).into_iter().for_each(|&position| add(position));
            }
        }
    }

    /// The merged table's entry for these key ids (a mixed-radix number).
    #[inline]
    fn merged_code(&self, ids: &[u32]) -> usize {
        let mut code = 0usize;
        for (d, dim) in self.dims.iter().enumerate() {
            code = code * (dim.ids.len() + 1) + ids[d] as usize;
        }
        code
    }

    /// For every combination of key ids, the union of the buckets it matches,
    /// shared between combinations that match the same buckets. `false` when
    /// that would exceed the memory budget.
    fn build_merged(&mut self, per_bucket: &FxHashMap<usize, Vec<(i64, i64, u32)>>, total: usize) -> bool {
        let mut shared: FxHashMap<Vec<usize>, u32> = FxHashMap::default();
        let mut intervals_in_all = 0usize;
        let mut ids = vec![0u32; self.dims.len()];
        for code in 0..total {
            let mut rest = code;
            for d in (0..self.dims.len()).rev() {
                let radix = self.dims[d].ids.len() + 1;
                ids[d] = (rest % radix) as u32;
                rest /= radix;
            }
            let buckets: Vec<usize> = self.candidate_buckets(&ids).filter(|b| per_bucket.contains_key(b)).collect();
            if buckets.is_empty() {
                continue;
            }
            if let Some(&pos) = shared.get(&buckets) {
                self.table[code] = pos;
                continue;
            }
            let intervals: Vec<(i64, i64, u32)> = buckets.iter().flat_map(|b| per_bucket[b].iter().copied()).collect();
            intervals_in_all += intervals.len();
            if intervals_in_all > MAX_MERGED_INTERVALS {
                return false;
            }
            let Some(segments) = Segments::build(&intervals) else {
                return false;
            };
            let pos = self.segments.len() as u32;
            self.segments.push(segments);
            shared.insert(buckets, pos);
            self.table[code] = pos;
        }
        true
    }

    /// The buckets a request with these key ids matches: per dimension, the
    /// key's own bucket (id > 0) and the wildcard bucket (0) where allowed.
    fn candidate_buckets<'a>(&'a self, ids: &'a [u32]) -> impl Iterator<Item = usize> + 'a {
        (0..(1usize << ids.len())).filter_map(move |combo| {
            let mut bucket = 0usize;
            for (d, dim) in self.dims.iter().enumerate() {
                let use_wildcard = (combo >> d) & 1 == 1;
                let id = match (use_wildcard, ids[d]) {
                    (true, _) if dim.wildcard => 0,
                    (false, id) if id > 0 => id,
                    _ => return None,
                };
                bucket = bucket * (dim.ids.len() + 1) + id as usize;
            }
            Some(bucket)
        })
    }
}

/// Every bucket number of the cartesian product of per-dimension ids.
fn combos(keys: &[Vec<u32>], radix: &[usize]) -> Vec<usize> {
    let mut out = vec![0usize];
    for (ids, r) in keys.iter().zip(radix) {
        out = out.iter().flat_map(|b| ids.iter().map(move |id| b * r + *id as usize)).collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Segments;

    #[test]
    fn overlapping_occurrences_of_one_element_cover_until_the_last_ends() {
        // Element 7 has two overlapping occurrences (a recurrence across a
        // clock change); element 8 one interval inside them.
        let segments = Segments::build(&[(0, 10, 7), (5, 15, 7), (6, 8, 8)]).expect("small");
        assert_eq!(segments.at(3), &[7]);
        assert_eq!(segments.at(7), &[7, 8]);
        assert_eq!(segments.at(12), &[7], "the second occurrence is still open");
        assert_eq!(segments.at(15), &[] as &[u32]);
    }
}
