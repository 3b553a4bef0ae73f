//! The interactive shell: line editing and history (rustyline), statements
//! may span lines and end with `;`.

use std::path::Path;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio::runtime::Runtime;

use crate::args::OutputFormat;
use crate::sql_cmd::{Runner, run_text};

const HELP: &str = "End each statement with ';'. Commands: \\q quit, \\? help.\n\
Examples: SHOW TABLES;  SELECT * FROM information_schema.tables;  SET quipu.execution = 'cluster';";

pub fn run(
    runtime: &Runtime,
    client: &Runner,
    data_dir: &Path,
    format: OutputFormat,
    verbose: bool,
) -> Result<(), String> {
    let mut editor = DefaultEditor::new().map_err(|e| format!("cannot start the shell: {e}"))?;
    let history = data_dir.join("history.txt");
    let _ = editor.load_history(&history);
    println!("quipu {} — {HELP}", env!("CARGO_PKG_VERSION"));
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "quipu> "
        } else {
            "   ...> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() {
                    match trimmed {
                        "" => continue,
                        "\\q" | "quit" | "exit" => break,
                        "\\?" | "help" => {
                            println!("{HELP}");
                            continue;
                        }
                        _ => {}
                    }
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !trimmed.ends_with(';') {
                    continue;
                }
                let sql = std::mem::take(&mut buffer);
                let _ = editor.add_history_entry(sql.trim());
                if let Err(e) = runtime.block_on(run_text(client, &sql, format, verbose)) {
                    eprintln!("error: {e}");
                }
            }
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("shell: {e}")),
        }
    }
    let _ = editor.save_history(&history);
    Ok(())
}
