//! What a decision gives: which arm matched and the values of its outcome,
//! found by the general evaluator. Shared by the program (which decides and
//! hands outcomes out) and the decision tables (which decide ahead).

use crate::eval::{eval, truth, Env, EvalError, Frame};
use crate::ir::DecisionIr;
use crate::value::Value;
use std::borrow::Cow;

/// Fields kept inline in [`OutcomeValues`]; more spill into a vector.
pub(crate) const INLINE_FIELDS: usize = 4;

/// The computed part of an outcome: its reason and extra fields. Values taken
/// from the program (constants, policy texts) are borrowed from it rather
/// than copied, and `Session::decide_with` lends them without copying.
#[derive(Debug)]
pub(crate) struct OutcomeValues<'p> {
    pub reason: Option<Cow<'p, Value>>,
    /// The first `count` are the arm's first fields; the rest null.
    pub fields: [Cow<'p, Value>; INLINE_FIELDS],
    pub count: usize,
    pub spill: Vec<Cow<'p, Value>>,
}

impl Clone for OutcomeValues<'_> {
    /// Only the fields the arm has (a memoised outcome is cloned per decision).
    fn clone(&self) -> Self {
        let mut fields: [Cow<Value>; INLINE_FIELDS] = Default::default();
        fields[..self.count].clone_from_slice(&self.fields[..self.count]);
        let spill = if self.spill.is_empty() { Vec::new() } else { self.spill.clone() };
        OutcomeValues { reason: self.reason.clone(), fields, count: self.count, spill }
    }
}

impl<'p> OutcomeValues<'p> {
    /// The values, every one owned (to keep beyond the evaluation that made them).
    pub fn into_owned(self) -> OutcomeValues<'static> {
        let own = |v: Cow<'p, Value>| Cow::Owned(v.into_owned());
        let mut fields: [Cow<'static, Value>; INLINE_FIELDS] = Default::default();
        for (to, from) in fields.iter_mut().zip(self.fields) {
            *to = own(from);
        }
        OutcomeValues { reason: self.reason.map(own), fields, count: self.count, spill: self.spill.into_iter().map(own).collect() }
    }

    /// The same values, borrowed from `self` (no reference count is touched).
    pub fn lend(&self) -> OutcomeValues<'_> {
        fn lent(v: &Value) -> Cow<'_, Value> {
            Cow::Borrowed(v)
        }
        let mut fields: [Cow<Value>; INLINE_FIELDS] = Default::default();
        for (to, from) in fields.iter_mut().zip(&self.fields[..self.count]) {
            *to = lent(from);
        }
        let spill = if self.spill.is_empty() { Vec::new() } else { self.spill.iter().map(|v| lent(v)).collect() };
        OutcomeValues { reason: self.reason.as_deref().map(lent), fields, count: self.count, spill }
    }

    /// Value number `position`: 0 is the reason, `1 + i` extra field `i`.
    pub fn position_mut(&mut self, position: usize) -> Option<&mut Cow<'p, Value>> {
        match position.checked_sub(1) {
            None => self.reason.as_mut(),
            Some(i) if i < INLINE_FIELDS => self.fields[..self.count].get_mut(i),
            Some(i) => self.spill.get_mut(i - INLINE_FIELDS),
        }
    }
}

/// The position of the first arm whose condition holds (`otherwise` last).
#[inline]
pub(crate) fn matching_arm<'p>(d: &'p DecisionIr, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<usize, EvalError> {
    for (index, arm) in d.arms.iter().chain(std::iter::once(&d.otherwise)).enumerate() {
        if truth(&arm.condition, env, frame)? {
            return Ok(index);
        }
    }
    Err(EvalError { span: d.span, message: "no arm matched".into() })
}

/// The reason and extra fields of arm number `arm_index`, evaluated.
pub(crate) fn outcome_values<'p>(d: &'p DecisionIr, arm_index: usize, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<OutcomeValues<'p>, EvalError> {
    let o = &d.arm(arm_index).outcome;
    let reason = match &o.reason {
        Some(n) => Some(eval(n, env, frame)?),
        None => None,
    };
    let mut fields: [Cow<'p, Value>; INLINE_FIELDS] = Default::default();
    let mut spill = Vec::new();
    for (i, (_, node)) in o.fields.iter().enumerate() {
        let v = eval(node, env, frame)?;
        if i < INLINE_FIELDS {
            fields[i] = v;
        } else {
            spill.push(v);
        }
    }
    Ok(OutcomeValues { reason, fields, count: o.fields.len().min(INLINE_FIELDS), spill })
}
