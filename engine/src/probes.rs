//! What a pack compares with, read from its checked IR: the constants each
//! dynamic input is compared with (`schedule_status == "healthy"`,
//! `provider in ["slack", "teams"]`) and every time constant (`@2026-05-21`).
//! A tool that examines a pack at every value and instant that can change
//! its decisions (`cavra diff`) starts from these; the engine itself never
//! needs them.

use crate::check::Checked;
use crate::ir::{children, InKind, Kind, LetDef, Node};
use crate::value::Value;

/// The constants dynamic input `slot` is compared with, and the time
/// constants, found anywhere in the pack (lets, decisions, readiness gates).
#[derive(Default)]
pub(crate) struct Probes {
    /// Per input slot, in the order they are written, without repeats.
    pub compared: Vec<Vec<Value>>,
    /// Every time constant, in the order written, without repeats.
    pub times: Vec<i64>,
}

impl Probes {
    pub(crate) fn of(checked: &Checked) -> Probes {
        let mut probes = Probes { compared: vec![Vec::new(); checked.inputs.len()], times: Vec::new() };
        let mut roots: Vec<&Node> = checked.lets.iter().map(|l| &l.node).collect();
        for decision in &checked.decisions {
            for arm in decision.arms.iter().chain(std::iter::once(&decision.otherwise)) {
                roots.push(&arm.condition);
                roots.extend(arm.outcome.reason.iter());
                roots.extend(arm.outcome.fields.iter().map(|(_, n)| n));
            }
        }
        for gate in &checked.gates {
            if let Some(requested) = &gate.requested {
                roots.push(&requested.condition);
            }
            for check in &gate.checks {
                roots.extend(check.guard.iter());
                roots.push(&check.condition);
            }
            roots.extend(gate.statuses.iter().map(|(_, n)| n));
        }
        for root in roots {
            probes.visit(root, &checked.lets);
        }
        // Only dynamic inputs are examined at several values; static ones are documents.
        for (slot, input) in checked.inputs.iter().enumerate() {
            if input.is_static {
                probes.compared[slot].clear();
            }
        }
        probes
    }

    fn visit(&mut self, node: &Node, lets: &[LetDef]) {
        match &node.kind {
            Kind::Const(Value::Time(t)) if !self.times.contains(t) => self.times.push(*t),
            Kind::Compare(first, rest) => {
                // Each comparison of a chain shares an operand with the next.
                let operands: Vec<&Node> = std::iter::once(&**first).chain(rest.iter().map(|(_, n)| n)).collect();
                for pair in operands.windows(2) {
                    self.compared_pair(pair[0], pair[1], lets);
                    self.compared_pair(pair[1], pair[0], lets);
                }
            }
            Kind::In(InKind::List, item, list) | Kind::NotIn(InKind::List, item, list) => {
                if let Some(slot) = input_of(item, lets) {
                    let values: Vec<Value> = match &list.kind {
                        Kind::Const(Value::List(items)) => items.to_vec(),
                        Kind::List(nodes) => nodes.iter().filter_map(|n| n.as_const().cloned()).collect(),
                        _ => Vec::new(),
                    };
                    for value in values {
                        self.add(slot, value);
                    }
                }
            }
            _ => {}
        }
        children(node, &mut |child| self.visit(child, lets));
    }

    /// `input OP constant`: the constant is one the input is compared with.
    fn compared_pair(&mut self, input: &Node, constant: &Node, lets: &[LetDef]) {
        if let (Some(slot), Some(value)) = (input_of(input, lets), constant.as_const()) {
            self.add(slot, value.clone());
        }
    }

    fn add(&mut self, slot: u32, value: Value) {
        if let Some(values) = self.compared.get_mut(slot as usize) {
            if !value.is_null() && !values.contains(&value) {
                values.push(value);
            }
        }
    }
}

/// The input a node reads as a whole: the input itself, or a `let` that is
/// only that input (`let status = schedule_status`).
fn input_of(node: &Node, lets: &[LetDef]) -> Option<u32> {
    match &node.kind {
        Kind::Input(slot) => Some(*slot),
        Kind::Let(i) => lets.get(*i as usize).and_then(|l| match &l.node.kind {
            Kind::Input(slot) => Some(*slot),
            _ => None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::value::Value;

    #[test]
    fn constants_compared_with_inputs_and_time_constants_are_found() {
        let source = r#"
pack probes
input now: time
input status: text
input provider: text
input owner: text
let s = status
let late = now >= @2026-05-21T18:00:00Z
decision route {
  when s == "healthy" => suppress healthy
  when provider in ["slack", "teams"] and late => suppress chat
  when "ops" != owner => suppress other
  otherwise => deliver reason "{owner}"
}
"#;
        let pack = crate::compile("probes.cavra", source).expect("the pack checks");
        let compared = pack.compared_constants();
        let find = |name: &str| compared.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(find("status"), vec![Value::text("healthy")]);
        assert_eq!(find("provider"), vec![Value::text("slack"), Value::text("teams")]);
        assert_eq!(find("owner"), vec![Value::text("ops")]);
        assert_eq!(pack.time_constants(), vec![crate::time::parse_time("2026-05-21T18:00:00Z").expect("a time")]);
    }
}
