//! Constant folding, shared by the checker (is an arm condition constant?)
//! and the compiler (fold what bind time knows): whether an expression is
//! closed, and folding its closed parts to constants.

use crate::eval::eval_const;
use crate::ir::*;
use crate::value::Value;

/// Folds closed sub-expressions; `let_consts[i]` replaces `Let(i)` when known.
pub(crate) fn fold(mut node: Node, let_consts: &[Option<Value>]) -> Node {
    children_mut(&mut node, &mut |child| {
        let taken = std::mem::replace(child, Node::constant(Value::Null, child.span));
        *child = fold(taken, let_consts);
    });
    if let Kind::Let(i) = node.kind {
        if let Some(Some(v)) = let_consts.get(i as usize) {
            return Node::constant(v.clone(), node.span);
        }
    }
    if node.as_const().is_none() && is_closed(&node, &mut Vec::new()) {
        if let Ok(v) = eval_const(&node) {
            return Node::constant(v, node.span);
        }
    }
    node
}

/// No inputs, no lets and no quantifier variables bound outside `node`.
pub(crate) fn is_closed(node: &Node, bound: &mut Vec<u32>) -> bool {
    match &node.kind {
        Kind::Input(_) | Kind::Let(_) | Kind::Indexed(_) => false,
        Kind::Local(l) => bound.contains(l),
        Kind::Scan(scan) => {
            if !is_closed(&scan.source, bound) {
                return false;
            }
            bound.push(scan.local);
            let ok = scan.filter.as_ref().is_none_or(|f| is_closed(f, bound)) && scan.key.as_ref().is_none_or(|k| is_closed(k, bound));
            bound.pop();
            ok
        }
        _ => {
            let mut ok = true;
            children(node, &mut |c| ok = ok && is_closed(c, bound));
            ok
        }
    }
}
