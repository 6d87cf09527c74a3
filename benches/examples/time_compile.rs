//! Quick timing of parse+check+compile of packs/large.cavra (median of 200).
fn main() {
    let source = include_str!("../packs/large.cavra");
    let mut times: Vec<f64> = (0..200)
        .map(|_| {
            let t = std::time::Instant::now();
            let pack = cavra_engine::compile("large.cavra", source).expect("compiles");
            std::hint::black_box(pack);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let parse: Vec<f64> = {
        let mut v: Vec<f64> = (0..200)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(cavra_grammar::parse("large.cavra", source).unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    };
    println!("compile median {:.3} ms, parse only median {:.3} ms ({} lines)", times[100], parse[100], source.lines().count());
}
