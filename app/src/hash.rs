//! Deterministic ids (README, "Architecture"): a prefix plus the first 16 hex digits of
//! SHA-256 over the canonical JSON of a record's content (sorted keys, no
//! spaces), so a record is never overwritten: history is append-only.
//!
//! Typed records are written in canonical form straight from their
//! `Serialize` implementation ([`record_hash`]), without building a
//! `serde_json::Value` first: a 10,000-plan batch hashes 100,000 records,
//! and the intermediate values cost more than the hashing. The text is
//! exactly what [`canonical_text`] gives for the record's `Value`, so the
//! ids are the same either way (tests below compare the two).

use compact_str::CompactString;
use serde::ser::{self, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// The first 16 hex digits of SHA-256 over canonical JSON (sorted keys, no spaces).
pub fn content_hash(value: &Json) -> String {
    text_hash(canonical_text(value).as_bytes())
}

/// [`content_hash`] of a record's JSON value, without building the value. A
/// record that does not serialize to JSON hashes as `null`, as its value does.
pub fn record_hash(record: &impl Serialize) -> String {
    CANONICAL.with(|cell| match cell.try_borrow_mut() {
        Ok(mut writer) => writer.hash(record),
        // Only a `Serialize` that hashes another record while being hashed gets here.
        Err(_) => Canonical::default().hash(record),
    })
}

/// A record's id, made from its hash by `id`, and the id each object in the
/// record's array field `field` would have (`element_prefix` and its hash)
/// with `key: <the record's id>` added (a plan's id, and its routes' ids,
/// each route with the plan's id in it), from
/// one canonical text: each object's text is already in the record's, so
/// its hash is taken there, with the entry put in its place on the way to
/// SHA-256, rather than writing the object again. `None` for the objects'
/// ids when the field's elements are not all objects without `key`, and
/// the caller hashes them alone.
pub fn record_id_and_element_ids(
    record: &impl Serialize,
    id: impl FnOnce(String) -> String,
    field: &'static str,
    key: &'static str,
    element_prefix: &str,
) -> (String, Option<Vec<CompactString>>) {
    let marking = (field, key, element_prefix);
    CANONICAL.with(|cell| match cell.try_borrow_mut() {
        Ok(mut writer) => writer.id_and_element_ids(record, id, marking),
        Err(_) => Canonical::default().id_and_element_ids(record, id, marking),
    })
}

thread_local! {
    /// One writer per thread, so its buffers are reused from record to record.
    static CANONICAL: std::cell::RefCell<Canonical> = std::cell::RefCell::default();
}

/// The first 16 hex digits of SHA-256 over a text.
fn text_hash(text: &[u8]) -> String {
    prefixed_hex("", &Sha256::digest(text))
}

/// `prefix` and the first 16 hex digits of a digest, in one allocation.
fn prefixed_hex(prefix: &str, digest: &[u8]) -> String {
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    id.push_str(&Hex::of(digest));
    id
}

/// The first 16 hex digits of a digest, on the stack.
struct Hex([u8; 16]);

impl Hex {
    fn of(digest: &[u8]) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [b'0'; 16];
        for (pair, b) in hex.chunks_exact_mut(2).zip(digest) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        Hex(hex)
    }
}

impl std::ops::Deref for Hex {
    type Target = str;
    fn deref(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `prefix` and a digest's 16 hex digits, kept inline (no allocation) for a
/// prefix of up to 8 bytes: the ids of route records.
fn prefixed_text(prefix: &str, digest: &[u8]) -> CompactString {
    let mut id = CompactString::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    id.push_str(&Hex::of(digest));
    id
}

/// `prefix` and the [`content_hash`] of a flat object of text (or null)
/// fields given with their keys in sorted order, without building the
/// JSON value or its text: ids of notifications are made for every route of
/// every plan.
pub fn fields_id(prefix: &str, sorted_fields: &[(&str, Option<&str>)]) -> CompactString {
    debug_assert!(sorted_fields.windows(2).all(|w| w[0].0 < w[1].0), "keys in sorted order");
    let mut sha = Sha256::new();
    let mut escaped = String::new();
    let mut string = |sha: &mut Sha256, text: &str| {
        if plain(text) {
            sha.update(b"\"");
            sha.update(text.as_bytes());
            sha.update(b"\"");
        } else {
            escaped.clear();
            quoted(text, &mut escaped);
            sha.update(escaped.as_bytes());
        }
    };
    sha.update(b"{");
    for (i, (key, value)) in sorted_fields.iter().enumerate() {
        if i > 0 {
            sha.update(b",");
        }
        string(&mut sha, key);
        sha.update(b":");
        match value {
            Some(v) => string(&mut sha, v),
            None => sha.update(b"null"),
        }
    }
    sha.update(b"}");
    prefixed_text(prefix, &sha.finalize())
}

/// Canonical JSON text: sorted keys, no spaces.
pub fn canonical_text(value: &Json) -> String {
    let mut text = String::with_capacity(1024);
    canonical(value, &mut text);
    text
}

fn canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quoted(k, out);
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Json::String(text) => quoted(text, out),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string literal, escaped as serde_json escapes it.
pub(crate) fn quoted(text: &str, out: &mut String) {
    if plain(text) {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&Json::from(text).to_string());
    }
}

/// Whether a text needs no escaping in a JSON string.
fn plain(text: &str) -> bool {
    // Every byte looked at, without a branch each: the loop is vectorised
    // (with `all`, which stops at the first, it took 7 instructions a byte).
    text.bytes().fold(true, |plain, b| plain & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

/// Writes canonical JSON from `Serialize` calls. An object's entries are
/// written as they come, noting where each starts and ends; when the object
/// ends they are put in key order (the last of equal keys wins, as in a
/// `Value`'s map). Buffers are kept across records.
#[derive(Default)]
struct Canonical {
    out: Vec<u8>,
    /// Map keys that are not `&'static str` (struct fields are), raw.
    keys: Vec<u8>,
    /// Where the entries of the objects being written are.
    entries: Vec<Entry>,
    /// Scratch for reordering an object.
    reorder: Vec<u8>,
    /// The order to write each object in whose keys are all struct fields
    /// (`&'static str`), found by the addresses of its keys: a struct
    /// writes its fields in the same order every time, and sorting them
    /// took a sixth of the ids of a batch's 100,000 records. The same
    /// addresses are the same keys, so an order found once holds.
    orders: rustc_hash::FxHashMap<Vec<(usize, usize)>, Vec<u32>>,
    /// Scratch: the addresses of the keys of the object being closed.
    addresses: Vec<(usize, usize)>,
    /// Scratch: the entries of the object being closed to write, in key order.
    order: Vec<u32>,
    /// Scratch: where each entry of the object being closed starts, in key order.
    starts: Vec<usize>,
    /// How many objects are open.
    depth: usize,
    /// Set while a record's array field is noted ([`record_id_and_element_ids`]).
    marking: Option<Marking>,
}

/// The objects of the outermost object's array field `field`, noted as
/// they are closed: where each is, and where `key` would go in it.
struct Marking {
    field: &'static str,
    key: &'static str,
    /// While the field's value is written.
    inside: bool,
    /// Whether the field was written.
    seen: bool,
    marks: Vec<Mark>,
    /// The field was written twice, or an element has `key` already.
    failed: bool,
}

/// An object's text in the output, and where an entry would go in it.
struct Mark {
    object: Range<usize>,
    at: usize,
    place: Place,
}

/// Where a new entry goes, and so which side its comma is on.
#[derive(Clone, Copy)]
enum Place {
    /// Before the entry at `at`: `"key":value,`.
    Before,
    /// After the last entry, `at` being the `}`: `,"key":value`.
    Last,
    /// In an empty object: `"key":value`.
    Alone,
}

/// One object entry: its key (raw, for sorting) and its `"key":value` text.
struct Entry {
    key: Key,
    text: Range<usize>,
}

enum Key {
    Static(&'static str),
    /// A range of [`Canonical::keys`].
    Kept(Range<usize>),
}

fn key_bytes<'k>(keys: &'k [u8], key: &'k Key) -> &'k [u8] {
    match key {
        Key::Static(text) => text.as_bytes(),
        Key::Kept(range) => &keys[range.clone()],
    }
}

/// Why a record has no canonical JSON (as for `serde_json::to_value`: a map
/// key that is not text, a number beyond 64 bits, a custom error).
#[derive(Debug)]
struct Unrepresentable(String);

impl std::fmt::Display for Unrepresentable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unrepresentable {}

impl ser::Error for Unrepresentable {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Unrepresentable(msg.to_string())
    }
}

type Done = Result<(), Unrepresentable>;

/// An object being written: where its `{` is, where its entries begin in
/// [`Canonical::entries`] and its keys in [`Canonical::keys`], and the entry
/// whose key is written and whose value is not yet.
struct Frame {
    /// How many objects were open around it.
    depth: usize,
    open: usize,
    first: usize,
    keys_from: usize,
    pending: Option<(Key, usize)>,
}

impl Canonical {
    fn hash(&mut self, record: &impl Serialize) -> String {
        self.write(record);
        text_hash(&self.out)
    }

    /// Writes a record's canonical text into `out`.
    fn write(&mut self, record: &impl Serialize) -> bool {
        self.out.clear();
        self.keys.clear();
        self.entries.clear();
        self.depth = 0;
        let written = record.serialize(&mut *self).is_ok();
        if !written {
            self.out.clear();
            self.out.extend_from_slice(b"null");
        }
        written
    }

    fn id_and_element_ids(
        &mut self,
        record: &impl Serialize,
        id: impl FnOnce(String) -> String,
        (field, key, element_prefix): (&'static str, &'static str, &str),
    ) -> (String, Option<Vec<CompactString>>) {
        self.marking = Some(Marking { field, key, inside: false, seen: false, marks: Vec::new(), failed: false });
        let written = self.write(record);
        let marking = self.marking.take();
        let id = id(text_hash(&self.out));
        let marks = marking.filter(|m| written && !m.failed).map(|m| m.marks);
        let hashes = marks.map(|marks| {
            let mut entry = String::with_capacity(key.len() + id.len() + 6);
            quoted(key, &mut entry);
            entry.push(':');
            quoted(&id, &mut entry);
            marks
                .iter()
                .map(|mark| {
                    let (object, at) = (&self.out[mark.object.clone()], mark.at - mark.object.start);
                    let mut sha = Sha256::new();
                    sha.update(&object[..at]);
                    match mark.place {
                        Place::Before => {
                            sha.update(entry.as_bytes());
                            sha.update(b",");
                        }
                        Place::Last => {
                            sha.update(b",");
                            sha.update(entry.as_bytes());
                        }
                        Place::Alone => sha.update(entry.as_bytes()),
                    }
                    sha.update(&object[at..]);
                    prefixed_text(element_prefix, &sha.finalize())
                })
                .collect()
        });
        (id, hashes)
    }

    fn string(&mut self, text: &str) {
        if plain(text) {
            self.out.push(b'"');
            self.out.extend_from_slice(text.as_bytes());
            self.out.push(b'"');
        } else {
            // serde_json's own escaping; writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.out, text);
        }
    }

    fn display(&mut self, value: impl std::fmt::Display) {
        use std::io::Write;
        let _ = write!(self.out, "{value}");
    }

    fn open_object(&mut self) -> Frame {
        let frame = Frame { depth: self.depth, open: self.out.len(), first: self.entries.len(), keys_from: self.keys.len(), pending: None };
        self.depth += 1;
        self.out.push(b'{');
        frame
    }

    /// Starts an entry of `frame`'s object: a comma when needed, then `"key":`.
    fn key(&mut self, frame: &mut Frame, key: Key) {
        if self.entries.len() > frame.first {
            self.out.push(b',');
        }
        let start = self.out.len();
        match &key {
            Key::Static(text) => self.string(text),
            Key::Kept(range) => {
                let raw = std::mem::take(&mut self.keys);
                // Keys are kept from `&str`, so they are UTF-8.
                self.string(std::str::from_utf8(&raw[range.clone()]).unwrap_or_default());
                self.keys = raw;
            }
        }
        self.out.push(b':');
        if let (0, Some(marking)) = (frame.depth, &mut self.marking) {
            if key_bytes(&self.keys, &key) == marking.field.as_bytes() {
                marking.failed |= marking.seen;
                marking.seen = true;
                marking.inside = true;
            }
        }
        frame.pending = Some((key, start));
    }

    /// Ends the entry whose value was just written.
    fn end_entry(&mut self, frame: &mut Frame) {
        if let (0, Some(marking)) = (frame.depth, &mut self.marking) {
            marking.inside = false;
        }
        if let Some((key, start)) = frame.pending.take() {
            let end = self.out.len();
            self.entries.push(Entry { key, text: start..end });
        }
    }

    /// Puts the entries of `frame`'s object in key order, and closes it.
    fn close_object(&mut self, frame: Frame) {
        let Frame { depth, open, first, keys_from, .. } = frame;
        self.depth = depth;
        self.order_entries(first);
        let entries = &self.entries[first..];
        let in_order = self.order.len() == entries.len() && self.order.iter().enumerate().all(|(i, &e)| i == e as usize);
        // Where the entries land is asked only while a field is noted.
        let noting = self.marking.is_some();
        self.starts.clear();
        if !in_order {
            self.reorder.clear();
            self.reorder.extend_from_slice(&self.out[open + 1..]);
            self.out.truncate(open + 1);
            let base = open + 1;
            for (written, &e) in self.order.iter().enumerate() {
                if written > 0 {
                    self.out.push(b',');
                }
                let text = &entries[e as usize].text;
                if noting {
                    self.starts.push(self.out.len());
                }
                self.out.extend_from_slice(&self.reorder[text.start - base..text.end - base]);
            }
        } else if noting {
            self.starts.extend(entries.iter().map(|e| e.text.start));
        }
        self.out.push(b'}');
        if noting {
            self.mark(depth, open, first);
        }
        self.entries.truncate(first);
        self.keys.truncate(keys_from);
    }

    /// While a record's array field is noted: notes an object of it just
    /// closed (at `depth` 1), or moves the notes with the field when the
    /// outermost object (at `depth` 0) put its entries in order.
    fn mark(&mut self, depth: usize, open: usize, first: usize) {
        let Some(marking) = &mut self.marking else { return };
        let entries = &self.entries[first..];
        let key = |e: u32| key_bytes(&self.keys, &entries[e as usize].key);
        if depth == 1 && marking.inside {
            let place = self.order.iter().position(|&e| key(e) >= marking.key.as_bytes());
            let (at, place) = match place {
                Some(p) if key(self.order[p]) == marking.key.as_bytes() => {
                    marking.failed = true;
                    return;
                }
                Some(p) => (self.starts[p], Place::Before),
                None if self.order.is_empty() => (open + 1, Place::Alone),
                None => (self.out.len() - 1, Place::Last),
            };
            marking.marks.push(Mark { object: open..self.out.len(), at, place });
        } else if depth == 0 && !marking.marks.is_empty() {
            let field = self.order.iter().position(|&e| key(e) == marking.field.as_bytes());
            let Some(p) = field else {
                marking.failed = true;
                return;
            };
            let (from, to) = (entries[self.order[p] as usize].text.start, self.starts[p]);
            for mark in &mut marking.marks {
                let moved = |at: usize| at - from + to;
                mark.object = moved(mark.object.start)..moved(mark.object.end);
                mark.at = moved(mark.at);
            }
        }
    }

    /// Sets [`Canonical::order`] to the entries of the object whose entries
    /// start at `first` to write, in key order: of equal keys the last
    /// written, alone.
    fn order_entries(&mut self, first: usize) {
        let entries = &self.entries[first..];
        let fields = entries.iter().all(|e| matches!(e.key, Key::Static(_)));
        if fields {
            self.addresses.clear();
            self.addresses.extend(entries.iter().map(|e| match e.key {
                Key::Static(text) => (text.as_ptr() as usize, text.len()),
                Key::Kept(_) => (0, 0),
            }));
            if let Some(order) = self.orders.get(&self.addresses) {
                self.order.clone_from(order);
                return;
            }
        }
        let keys = &self.keys;
        let key = |e: u32| key_bytes(keys, &entries[e as usize].key);
        if !fields && (1..entries.len() as u32).all(|e| key(e - 1) < key(e)) {
            // A map written in key order (a `BTreeMap`): as it is.
            self.order.clear();
            self.order.extend(0..entries.len() as u32);
            return;
        }
        let mut sorted: Vec<u32> = (0..entries.len() as u32).collect();
        // Stable: equal keys stay in the order they were written.
        sorted.sort_by(|&a, &b| key(a).cmp(key(b)));
        self.order.clear();
        for (i, &e) in sorted.iter().enumerate() {
            if sorted.get(i + 1).is_none_or(|&next| key(next) != key(e)) {
                self.order.push(e);
            }
        }
        if fields {
            self.orders.insert(self.addresses.clone(), self.order.clone());
        }
    }
}

/// An array being written; for a tuple variant, inside its `{"variant":...}`.
struct Array<'w> {
    w: &'w mut Canonical,
    first: bool,
    variant: Option<Frame>,
}

impl Array<'_> {
    fn element(&mut self, value: &(impl Serialize + ?Sized)) -> Done {
        if !std::mem::take(&mut self.first) {
            self.w.out.push(b',');
        }
        value.serialize(&mut *self.w)
    }

    fn close(self) -> Done {
        self.w.out.push(b']');
        if let Some(mut frame) = self.variant {
            self.w.end_entry(&mut frame);
            self.w.close_object(frame);
        }
        Ok(())
    }
}

/// An object being written (a map, a struct); for a struct variant, inside its `{"variant":...}`.
struct Object<'w> {
    w: &'w mut Canonical,
    frame: Frame,
    variant: Option<Frame>,
}

impl Object<'_> {
    fn field(&mut self, key: &'static str, value: &(impl Serialize + ?Sized)) -> Done {
        self.w.key(&mut self.frame, Key::Static(key));
        value.serialize(&mut *self.w)?;
        self.w.end_entry(&mut self.frame);
        Ok(())
    }

    fn close(self) -> Done {
        self.w.close_object(self.frame);
        if let Some(mut frame) = self.variant {
            self.w.end_entry(&mut frame);
            self.w.close_object(frame);
        }
        Ok(())
    }
}

impl<'w> ser::Serializer for &'w mut Canonical {
    type Ok = ();
    type Error = Unrepresentable;
    type SerializeSeq = Array<'w>;
    type SerializeTuple = Array<'w>;
    type SerializeTupleStruct = Array<'w>;
    type SerializeTupleVariant = Array<'w>;
    type SerializeMap = Object<'w>;
    type SerializeStruct = Object<'w>;
    type SerializeStructVariant = Object<'w>;

    fn serialize_bool(self, v: bool) -> Done {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Done {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Done {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Done {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Done {
        self.display(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Done {
        // As `serde_json::to_value`: a number only within 64 bits.
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(v), _) => self.serialize_i64(v),
            (_, Ok(v)) => self.serialize_u64(v),
            _ => Err(Unrepresentable("number out of range".into())),
        }
    }
    fn serialize_u8(self, v: u8) -> Done {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Done {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Done {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Done {
        self.display(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Done {
        let v = u64::try_from(v).map_err(|_| Unrepresentable("number out of range".into()))?;
        self.serialize_u64(v)
    }
    fn serialize_f32(self, v: f32) -> Done {
        // A `Value` keeps an f32 as the f64 it converts to.
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Done {
        // serde_json writes a finite float as a `Value`'s number shows it (ryu), anything else as null.
        let _ = serde_json::to_writer(&mut self.out, &v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Done {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Done {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        let mut array = self.serialize_seq(Some(v.len()))?;
        for b in v {
            array.element(b)?;
        }
        array.close()
    }
    fn serialize_none(self) -> Done {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Done {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _name: &'static str, _index: u32, variant: &'static str, value: &T) -> Done {
        let frame = self.open_object();
        let mut wrapper = Object { w: self, frame, variant: None };
        wrapper.field(variant, value)?;
        wrapper.close()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'w>, Unrepresentable> {
        self.out.push(b'[');
        Ok(Array { w: self, first: true, variant: None })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'w>, Unrepresentable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Array<'w>, Unrepresentable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(self, _name: &'static str, _index: u32, variant: &'static str, _len: usize) -> Result<Array<'w>, Unrepresentable> {
        let mut outer = self.open_object();
        self.key(&mut outer, Key::Static(variant));
        self.out.push(b'[');
        Ok(Array { w: self, first: true, variant: Some(outer) })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'w>, Unrepresentable> {
        let frame = self.open_object();
        Ok(Object { w: self, frame, variant: None })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Object<'w>, Unrepresentable> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(self, _name: &'static str, _index: u32, variant: &'static str, _len: usize) -> Result<Object<'w>, Unrepresentable> {
        let mut outer = self.open_object();
        self.key(&mut outer, Key::Static(variant));
        let frame = self.open_object();
        Ok(Object { w: self, frame, variant: Some(outer) })
    }
}

impl ser::SerializeSeq for Array<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeTuple for Array<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Array<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Array<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        let text = key.serialize(MapKey)?;
        let start = self.w.keys.len();
        self.w.keys.extend_from_slice(text.as_bytes());
        let range = start..self.w.keys.len();
        self.w.key(&mut self.frame, Key::Kept(range));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut *self.w)?;
        self.w.end_entry(&mut self.frame);
        Ok(())
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
        self.field(key, value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeStructVariant for Object<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
        self.field(key, value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

/// A map key as `serde_json::to_value` takes it: text, or a number or
/// boolean written as text; anything else has no JSON form.
struct MapKey;

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = Unrepresentable;
    type SerializeSeq = ser::Impossible<String, Unrepresentable>;
    type SerializeTuple = ser::Impossible<String, Unrepresentable>;
    type SerializeTupleStruct = ser::Impossible<String, Unrepresentable>;
    type SerializeTupleVariant = ser::Impossible<String, Unrepresentable>;
    type SerializeMap = ser::Impossible<String, Unrepresentable>;
    type SerializeStruct = ser::Impossible<String, Unrepresentable>;
    type SerializeStructVariant = ser::Impossible<String, Unrepresentable>;

    fn serialize_bool(self, v: bool) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _v: f32) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_char(self, v: char) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, Unrepresentable> {
        Ok(v.to_string())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_none(self) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_unit(self) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<String, Unrepresentable> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<String, Unrepresentable> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<String, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeTupleVariant, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeStructVariant, Unrepresentable> {
        Err(Unrepresentable("a map key must be text".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flat_object_hashes_as_its_canonical_json() {
        let fields = [("alert_level", Some("warning")), ("episode", None), ("owner", Some("a \"quoted\" owner")), ("provider", Some("teams"))];
        let value = json!({"provider": "teams", "owner": "a \"quoted\" owner", "episode": null, "alert_level": "warning"});
        assert_eq!(fields_id("ntf_", &fields), format!("ntf_{}", content_hash(&value)));
    }

    /// The canonical text a record's writer makes, to compare with its value's.
    fn written(record: &impl Serialize) -> String {
        let mut writer = Canonical::default();
        writer.hash(record);
        String::from_utf8(writer.out).unwrap()
    }

    #[test]
    fn a_record_is_written_as_its_value_is() {
        let values = [
            json!({"b": 1, "a": [1, 2.5, -3, {"z": null, "y": true}], "é": "\u{7f}\n\"\\/", "": {}, "aa": [], "a\"": "quoted key", "a\u{1}": 0.1}),
            json!([{"b": {"d": 1, "c": 2}, "a": 1e300}, "x", 18446744073709551615u64, -9223372036854775808i64, 1.0]),
            json!("plain"),
            json!(null),
        ];
        for value in &values {
            assert_eq!(written(value), canonical_text(value));
            assert_eq!(record_hash(value), content_hash(value));
        }
    }

    #[derive(serde::Serialize)]
    enum Shape {
        Unit,
        New(u8),
        Pair(i32, &'static str),
        Named { z: f32, a: Option<bool> },
    }

    #[derive(serde::Serialize)]
    struct Record {
        zeta: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        alpha: Vec<Shape>,
        #[serde(flatten)]
        extra: std::collections::BTreeMap<String, i64>,
        map: std::collections::HashMap<u32, char>,
        bytes: &'static [u8],
        tuple: (u128, i128, f64),
    }

    #[test]
    fn typed_records_of_every_shape_are_written_as_their_values_are() {
        let record = Record {
            zeta: "last field, first key",
            skipped: None,
            alpha: vec![Shape::Unit, Shape::New(7), Shape::Pair(-1, "two"), Shape::Named { z: 0.1, a: Some(false) }],
            // A flattened key equal to a field's: the later one wins, as in a `Value`.
            extra: [("alpha".to_string(), 1), ("mid".to_string(), 2)].into(),
            map: [(10, 'x'), (2, '"')].into(),
            bytes: b"ab",
            tuple: (u128::from(u64::MAX), -5, f64::NAN),
        };
        let value = serde_json::to_value(&record).unwrap();
        assert_eq!(written(&record), canonical_text(&value));
        assert_eq!(record_hash(&record), content_hash(&value));
    }

    #[derive(Clone, serde::Serialize)]
    struct Element {
        zeta: &'static str,
        #[serde(skip_serializing_if = "String::is_empty")]
        middle: String,
        alpha: Option<u8>,
        #[serde(flatten)]
        extra: std::collections::BTreeMap<String, i64>,
    }

    #[derive(serde::Serialize)]
    struct Holder {
        zulu: Vec<Element>,
        #[serde(skip_serializing_if = "String::is_empty")]
        id: String,
        elements: Vec<Element>,
        alpha: std::collections::BTreeMap<String, Element>,
    }

    /// Each element's id alone, with `key` (`middle`) set to the holder's id.
    fn alone(holder: &Holder, id: &str) -> Vec<CompactString> {
        holder.elements.iter().map(|e| format!("e_{}", record_hash(&Element { middle: id.to_string(), ..e.clone() })).into()).collect()
    }

    #[test]
    fn elements_get_in_their_record_the_ids_they_get_alone_with_the_records_id() {
        let element = |zeta, alpha, extra: &[(&str, i64)]| Element {
            zeta,
            middle: String::new(),
            alpha,
            extra: extra.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        let holder = Holder {
            zulu: vec![element("same field, another array", None, &[])],
            id: String::new(),
            elements: vec![
                // The new entry between others, first (a key before "alpha"), last (after "zeta"), alone.
                element("z", Some(1), &[("beta", 2)]),
                element("a \"quoted\" text", None, &[("aaa", 1)]),
                element("", Some(0), &[("zz", 3), ("mm", 4)]),
            ],
            alpha: [("nested".to_string(), element("not an element", None, &[]))].into(),
        };
        let (id, hashes) = record_id_and_element_ids(&holder, |hash| format!("h_{hash}"), "elements", "middle", "e_");
        assert_eq!(id, format!("h_{}", record_hash(&holder)));
        assert_eq!(hashes, Some(alone(&holder, &id)));

        // The new entry first, between others, last, alone in an empty object.
        type Map = std::collections::BTreeMap<String, String>;
        let map = |entries: &[&str]| -> Map { entries.iter().map(|k| (k.to_string(), format!("value of {k}"))).collect() };
        let elements = vec![map(&["n", "y"]), map(&["a", "z"]), map(&["a", "b"]), map(&[])];
        let record: std::collections::BTreeMap<&str, &Vec<Map>> = [("elements", &elements), ("other", &elements)].into();
        let (id, hashes) = record_id_and_element_ids(&record, |hash| hash, "elements", "m", "");
        let alone: Vec<CompactString> =
            elements.iter().map(|e| record_hash(&Map::from_iter(e.clone().into_iter().chain([("m".into(), id.clone())]))).into()).collect();
        assert_eq!(hashes, Some(alone));
    }

    #[test]
    fn elements_that_have_the_key_already_are_not_hashed_in_their_record() {
        let mut holder = Holder { zulu: vec![], id: "given".into(), elements: vec![], alpha: Default::default() };
        holder.elements.push(Element { zeta: "z", middle: "set".into(), alpha: None, extra: Default::default() });
        let (id, hashes) = record_id_and_element_ids(&holder, |hash| hash, "elements", "middle", "");
        assert_eq!(id, record_hash(&holder));
        assert_eq!(hashes, None);
        // Nor when the key is not there: no elements, no hashes.
        holder.elements.clear();
        assert_eq!(record_id_and_element_ids(&holder, |hash| hash, "elements", "middle", "").1, Some(vec![]));
    }

    #[test]
    fn a_record_without_a_json_value_hashes_as_null() {
        let unrepresentable: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        assert!(serde_json::to_value(&unrepresentable).is_err());
        assert_eq!(record_hash(&unrepresentable), content_hash(&Json::Null));
        assert_eq!(record_hash(&(u128::MAX, 1)), content_hash(&Json::Null));
    }
}
