fn main() {
    let s = include_str!("../packs/large.cavra");
    let _ = cavra_grammar::parse("x", s);
}
