//! The `dlc` command: check, format, run, compile and benchmark `.ir` models.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`dlc check m.ir | head`) like other Unix tools,
    // instead of panicking in `println!`.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match cli::main() {
        Ok(code) => code,
        Err(e) => {
            let text = e.to_string();
            if text.starts_with("Error") || text.starts_with("[") {
                eprint!("{text}");
                if !text.ends_with('\n') {
                    eprintln!();
                }
            } else {
                eprintln!("error: {text}");
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
