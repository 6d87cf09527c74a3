//! What the checker learns about a pack's names and expressions, kept when
//! asked for ([`crate::analysis`]): the type of every expression, where each
//! name is declared, and the record types with their fields. Editors use it
//! for hover, go to definition and completion; checking alone records nothing.

use super::Checker;
use crate::types::Ty;
use cavra_grammar::ast::Span;

/// What a declared name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolKind {
    Type,
    Field,
    Input,
    Let,
    /// A quantifier's variable (`w` in `first w in ...`).
    Variable,
}

/// A name where it is used (or declared: then `span == target`).
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub span: Span,
    /// Where the name is declared (in the pack's combined text: it may be in a module).
    pub target: Span,
    pub kind: SymbolKind,
    pub name: String,
    /// Its type as a pack writes it (`list<MaintenanceWindow>?`); for a record type, its name.
    pub ty: String,
}

/// A record type and its fields, as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordFacts {
    pub name: String,
    pub span: Span,
    /// (name, type, span of the name).
    pub fields: Vec<(String, String, Span)>,
}

/// Everything recorded about one checked pack.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// Every expression: its span and type.
    pub types: Vec<(Span, String)>,
    pub references: Vec<Reference>,
    pub records: Vec<RecordFacts>,
    /// Each `.field` read: the span of the field's name and the record type
    /// read from (whether or not it has the field: completion asks this).
    pub field_reads: Vec<(Span, String)>,
}

impl Checker<'_> {
    pub(super) fn note_type(&mut self, span: Span, ty: &Ty) {
        if self.facts.is_some() {
            let shown = self.show(ty);
            if let Some(facts) = &mut self.facts {
                facts.types.push((span, shown));
            }
        }
    }

    pub(super) fn note_reference(&mut self, span: Span, target: Span, kind: SymbolKind, name: &str, ty: &Ty) {
        if self.facts.is_some() {
            let ty = self.show(ty);
            if let Some(facts) = &mut self.facts {
                facts.references.push(Reference { span, target, kind, name: name.to_string(), ty });
            }
        }
    }

    pub(super) fn note_field_read(&mut self, span: Span, record: u32) {
        if let Some(facts) = &mut self.facts {
            facts.field_reads.push((span, self.schema.record(record).name.clone()));
        }
    }

    /// The record types, once their fields are known.
    pub(super) fn note_records(&mut self, spans: &[(Span, Vec<Span>)]) {
        if self.facts.is_none() {
            return;
        }
        let records: Vec<RecordFacts> = self
            .schema
            .records
            .iter()
            .zip(spans)
            .map(|(record, (span, field_spans))| RecordFacts {
                name: record.name.clone(),
                span: *span,
                fields: record.fields.iter().zip(field_spans).map(|(f, s)| (f.name.clone(), self.show(&f.ty), *s)).collect(),
            })
            .collect();
        if let Some(facts) = &mut self.facts {
            for r in &records {
                facts.references.push(Reference { span: r.span, target: r.span, kind: SymbolKind::Type, name: r.name.clone(), ty: r.name.clone() });
                for (name, ty, span) in &r.fields {
                    facts.references.push(Reference { span: *span, target: *span, kind: SymbolKind::Field, name: name.clone(), ty: ty.clone() });
                }
            }
            facts.records = records;
        }
    }
}
