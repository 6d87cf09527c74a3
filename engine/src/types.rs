//! Static types of the language and the record schema declared by a pack.

use crate::value::Value;
use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Unknown after an error: compatible with everything, so one mistake is
    /// reported once instead of cascading.
    Any,
    /// The type of the `null` literal.
    Null,
    Bool,
    Number,
    Text,
    Time,
    Duration,
    /// A weekly wall-clock recurrence (see [`crate::recurrence`]).
    Recurrence,
    List(Box<Ty>),
    Map(Box<Ty>),
    Record(u32),
    Optional(Box<Ty>),
}

impl Ty {
    pub fn optional(self) -> Ty {
        match self {
            Ty::Optional(_) | Ty::Any | Ty::Null => self,
            other => Ty::Optional(Box::new(other)),
        }
    }
    /// The type without its optional mark.
    pub fn base(&self) -> &Ty {
        match self {
            Ty::Optional(inner) => inner,
            other => other,
        }
    }
    pub fn is_optional(&self) -> bool {
        matches!(self, Ty::Optional(_) | Ty::Null)
    }
    pub fn is_any(&self) -> bool {
        matches!(self.base(), Ty::Any)
    }

    /// The common type of two branches/elements, if they are compatible.
    pub fn unify(&self, other: &Ty) -> Option<Ty> {
        match (self, other) {
            (Ty::Any, t) | (t, Ty::Any) => Some(t.clone()),
            (Ty::Null, t) | (t, Ty::Null) => Some(t.clone().optional()),
            _ => {
                let optional = self.is_optional() || other.is_optional();
                let base = match (self.base(), other.base()) {
                    (Ty::List(a), Ty::List(b)) => Ty::List(Box::new(a.unify(b)?)),
                    (Ty::Map(a), Ty::Map(b)) => Ty::Map(Box::new(a.unify(b)?)),
                    (a, b) if a == b => a.clone(),
                    (Ty::Any, b) => b.clone(),
                    (a, Ty::Any) => a.clone(),
                    _ => return None,
                };
                Some(if optional { base.optional() } else { base })
            }
        }
    }

    pub fn display<'a>(&'a self, schema: &'a Schema) -> TyDisplay<'a> {
        TyDisplay { ty: self, schema }
    }
}

pub struct TyDisplay<'a> {
    ty: &'a Ty,
    schema: &'a Schema,
}

impl fmt::Display for TyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            Ty::Any => f.write_str("unknown"),
            Ty::Null => f.write_str("null"),
            Ty::Bool => f.write_str("bool"),
            Ty::Number => f.write_str("number"),
            Ty::Text => f.write_str("text"),
            Ty::Time => f.write_str("time"),
            Ty::Duration => f.write_str("duration"),
            Ty::Recurrence => f.write_str("recurrence"),
            Ty::List(t) => write!(f, "list<{}>", t.display(self.schema)),
            Ty::Map(t) => write!(f, "map<{}>", t.display(self.schema)),
            Ty::Record(id) => f.write_str(&self.schema.records[*id as usize].name),
            Ty::Optional(t) => write!(f, "{}?", t.display(self.schema)),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub records: Vec<RecordDef>,
}

#[derive(Clone, Debug)]
pub struct RecordDef {
    pub name: String,
    pub fields: Vec<FieldDef>,
    /// Shared by every record value of this type.
    pub names: Arc<[Arc<str>]>,
    pub by_name: HashMap<String, u32>,
}

#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: String,
    pub ty: Ty,
    pub default: Option<Value>,
}

impl Schema {
    pub fn record(&self, id: u32) -> &RecordDef {
        &self.records[id as usize]
    }
}
