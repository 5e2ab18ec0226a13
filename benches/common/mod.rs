//! The reference workloads of PEERS.md as the bench binaries load them: one
//! `.ir` file each in `benches/workloads/`, named by its id (`w1c.ir` is W1c).

/// One workload: its id, model text, and the work per run for throughput reports.
pub struct Workload {
    /// The id as PEERS.md writes it, e.g. `W1c`.
    pub id: String,
    /// The model text.
    pub source: String,
    /// Floating-point operations per run, from the file's `# flops: N` line.
    pub flops: Option<u64>,
}

/// The workloads of `benches/workloads/*.ir`, sorted by id.
pub fn workloads() -> Vec<Workload> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/workloads");
    let mut w: Vec<Workload> = std::fs::read_dir(dir)
        .expect("benches/workloads exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ir"))
        .map(|p| {
            let source = std::fs::read_to_string(&p).expect("workload file reads");
            let flops = source
                .lines()
                .find_map(|l| l.strip_prefix("# flops: "))
                .map(|f| f.trim().parse().expect("flops is an integer"));
            let stem = p.file_stem().unwrap().to_string_lossy();
            Workload {
                id: format!("W{}", &stem[1..]),
                source,
                flops,
            }
        })
        .collect();
    w.sort_by(|a, b| a.id.cmp(&b.id));
    w
}
