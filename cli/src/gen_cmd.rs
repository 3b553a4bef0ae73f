//! `quipu gen`: runs the generator and prints what it loaded.

use std::io::IsTerminal;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::args::GenArgs;

pub async fn run(args: GenArgs) -> Result<(), String> {
    let config = quipu_gen::GenConfig {
        scale: args.scale,
        seed: args.seed,
        crm_url: args.crm_url,
        pos_url: args.pos_url,
        mongodb_url: args.mongodb_url,
        lake: args.lake,
        progress: std::io::stderr().is_terminal() && !args.json,
    };
    let report = quipu_gen::run(&config).await.map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", report.to_json());
        return Ok(());
    }
    let mut tables = Table::new();
    tables.load_preset(UTF8_FULL_CONDENSED);
    tables.set_header(["system", "table", "rows", "seconds", "checksum"]);
    for t in &report.tables {
        tables.add_row([
            t.system.to_string(),
            t.table.clone(),
            t.rows.to_string(),
            format!("{:.1}", t.seconds),
            t.checksum.clone(),
        ]);
    }
    println!("{tables}");
    for s in &report.systems {
        println!(
            "{:<10} {:>11} rows in {:>6.1} s  ({:.0} rows/s)",
            s.system,
            s.rows,
            s.seconds,
            s.rows as f64 / s.seconds.max(1e-9)
        );
    }
    let rss = report
        .peak_rss_bytes
        .map(|b| format!(", peak memory {} MiB", b / (1 << 20)))
        .unwrap_or_default();
    println!(
        "scale {} seed {}: done in {:.1} s{rss}",
        report.scale, report.seed, report.seconds
    );
    Ok(())
}
