//! The evaluation-depth limit (`E0002`): evaluation recurses once per level
//! of an expression, into the lets it uses too, so packs deeper than a small
//! thread's stack allows are refused when checked rather than failing later.

use super::Checker;
use crate::ir::*;
use cavra_grammar::diagnostic::Diagnostic;

/// Deepest expression tree (with lets expanded) a pack may have; evaluation
/// recurses once per level.
const MAX_EVALUATION_DEPTH: usize = 256;

impl Checker<'_> {
    /// Evaluation recurses through expressions and into the lets they use;
    /// refuse packs whose total depth could exhaust a small thread's stack.
    pub(super) fn bound_evaluation_depth(&mut self, decisions: &[DecisionIr], gates: &[GateIr]) {
        fn depth(node: &Node, lets: &[usize]) -> usize {
            let own = match node.kind {
                Kind::Let(i) => lets.get(i as usize).copied().unwrap_or(0),
                _ => 0,
            };
            let mut deepest = own;
            children(node, &mut |c| deepest = deepest.max(depth(c, lets)));
            deepest + 1
        }
        let mut let_depths = vec![0; self.let_nodes.len()];
        let mut nodes: Vec<&Node> = Vec::new();
        for &i in &self.let_order {
            if let Some(node) = &self.let_nodes[i as usize] {
                let_depths[i as usize] = depth(node, &let_depths);
                nodes.push(node);
            }
        }
        for d in decisions {
            for arm in d.arms.iter().chain(std::iter::once(&d.otherwise)) {
                nodes.push(&arm.condition);
                nodes.extend(arm.outcome.reason.iter());
                nodes.extend(arm.outcome.fields.iter().map(|(_, n)| n));
            }
        }
        for g in gates {
            if let Some(r) = &g.requested {
                nodes.push(&r.condition);
                nodes.extend(r.fail.iter().chain(r.pass.iter()));
            }
            for c in &g.checks {
                nodes.extend([&c.condition, &c.fail]);
                nodes.extend(c.guard.iter());
                nodes.extend(c.pass.iter());
                nodes.extend(c.fields.iter().map(|(_, n)| n));
            }
            nodes.extend(g.statuses.iter().map(|(_, n)| n));
        }
        let mut reports = Vec::new();
        for node in nodes {
            let d = depth(node, &let_depths);
            if d > MAX_EVALUATION_DEPTH {
                reports.push(
                    Diagnostic::error("E0002", node.span, format!("this expression is {d} levels deep once its `let`s are expanded"))
                        .with_help(format!("at most {MAX_EVALUATION_DEPTH} levels: simplify the expression or the lets it uses")),
                );
            }
        }
        reports.truncate(1);
        self.diags.extend(reports);
    }
}
