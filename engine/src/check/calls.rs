//! Calls of builtins, typed by their registry entries (`builtins/`); the
//! window builtins (`active`, `active_until`) are lowered here.

use super::diagnostics::type_mismatch;
use super::Checker;
use crate::builtins::Typing;
use crate::ir::*;
use crate::types::Ty;
use crate::value::Value;
use cavra_grammar::ast::{self, Span};
use cavra_grammar::diagnostic::{did_you_mean, Diagnostic};

impl Checker<'_> {
    pub(super) fn call(&mut self, name: &ast::Ident, args: &[ast::Expr], span: Span) -> (Node, Ty) {
        let Some(builtin) = Builtin::lookup(&name.name) else {
            let names = Builtin::names();
            let mut d = Diagnostic::error("E0103", name.span, format!("unknown function `{}`", name.name)).with_label("not a function");
            if let Some(s) = did_you_mean(&name.name, names) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            for a in args {
                self.expr(a);
            }
            return self.err(d);
        };
        let typed: Vec<(Node, Ty)> = args.iter().map(|a| self.expr(a)).collect();
        let def = builtin.def();
        let arity = def.arity;
        if matches!(def.typing, Typing::Window) && typed.len() == arity {
            return self.active(builtin, typed, span);
        }
        if typed.len() != arity {
            return self.err(
                Diagnostic::error("E0201", span, format!("`{}` takes {arity} argument{}, got {}", name.name, if arity == 1 { "" } else { "s" }, typed.len()))
                    .with_label("wrong number of arguments"),
            );
        }
        let tys: Vec<Ty> = typed.iter().map(|(_, t)| t.base().clone()).collect();
        let any = tys.iter().any(|t| matches!(t, Ty::Any));
        let result = match def.typing {
            _ if any => Some(Ty::Any),
            Typing::Args(result) => result(&tys),
            // Not reached: a window call with the right arity was lowered above.
            Typing::Window => None,
        };
        match result {
            Some(ty) => (Node::new(Kind::Call(builtin, typed.into_iter().map(|(n, _)| n).collect()), span), ty),
            None => {
                let shown: Vec<String> = typed.iter().map(|(_, t)| self.show(t)).collect();
                let msg = format!("`{}` cannot be applied to ({})", name.name, shown.join(", "));
                self.err(type_mismatch(span, msg).with_help(format!("see the built-in functions in docs/language.md: {}", def.signature)))
            }
        }
    }

    /// `active(w, t)`: `w` is a recurrence, or a record with `start_at` and
    /// `end_at` (time) and/or `recurrence`. Lowered to a call on the three
    /// fields (null where the record lacks one) so that the index can see
    /// which fields of a scanned element bound the window.
    fn active(&mut self, builtin: Builtin, mut typed: Vec<(Node, Ty)>, span: Span) -> (Node, Ty) {
        let result = if builtin == Builtin::Active { Ty::Bool } else { Ty::Optional(Box::new(Ty::Time)) };
        let (at, at_ty) = typed.pop().unwrap_or((Node::constant(Value::Null, span), Ty::Any));
        let (window, window_ty) = typed.pop().unwrap_or((Node::constant(Value::Null, span), Ty::Any));
        if !matches!(at_ty.base(), Ty::Time | Ty::Any) {
            let shown = self.show(&at_ty);
            return self.err(type_mismatch(at.span, format!("`{}` needs a time as its second argument, but this is {shown}", builtin.name())));
        }
        let null = || Node::constant(Value::Null, span);
        let parts = match window_ty.base() {
            Ty::Any => return (Node::new(Kind::Call(builtin, vec![null(), null(), window, at]), span), Ty::Any),
            Ty::Recurrence => [null(), null(), window],
            Ty::Record(id) => {
                let rec = self.schema.record(*id);
                let name = rec.name.clone();
                let mut found = Vec::with_capacity(3);
                for (field, want) in [("start_at", Ty::Time), ("end_at", Ty::Time), ("recurrence", Ty::Recurrence)] {
                    let Some(&idx) = rec.by_name.get(field) else {
                        found.push(None);
                        continue;
                    };
                    let ty = rec.fields[idx as usize].ty.clone();
                    if ty.base() != &want {
                        let (want, got) = (self.show(&want), self.show(&ty));
                        return self.err(type_mismatch(window.span, format!("`{}` needs `{name}.{field}` to be {want}, but it is {got}", builtin.name())));
                    }
                    found.push(Some(Node::new(Kind::Field(Box::new(window.clone()), idx), window.span)));
                }
                match found.as_slice() {
                    [Some(_), Some(_), _] | [_, _, Some(_)] => {
                        let mut found = found.into_iter().map(|n| n.unwrap_or_else(null));
                        [found.next().unwrap_or_else(null), found.next().unwrap_or_else(null), found.next().unwrap_or_else(null)]
                    }
                    _ => {
                        return self.err(
                            type_mismatch(
                                window.span,
                                format!("`{}` needs a window, but `{name}` has neither `start_at` and `end_at` nor `recurrence`", builtin.name()),
                            )
                            .with_help("declare start_at: time? and end_at: time?, and/or recurrence: recurrence?"),
                        );
                    }
                }
            }
            other => {
                let shown = self.show(other);
                return self.err(
                    type_mismatch(window.span, format!("`{}` needs a window record or a recurrence, but this is {shown}", builtin.name()))
                        .with_help(format!("see the built-in functions in docs/language.md: {}", builtin.def().signature)),
                );
            }
        };
        let [start, end, recurrence] = parts;
        (Node::new(Kind::Call(builtin, vec![start, end, recurrence, at]), span), result)
    }
}
