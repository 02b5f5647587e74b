use std::process::ExitCode;

fn main() -> ExitCode {
    iam_warden::commands::main()
}
